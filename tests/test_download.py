"""`star download`: the SoccerNet downloader wrapper (a stand-in downloader; nothing leaves this machine)."""

import sys
from pathlib import Path

import pytest
from SoccerNet import Downloader, utils

from star.cli import main

GAMES = {"test": ["england_epl/2014-2015/2015-02-21 - 18-00 Chelsea 1 - 1 Burnley",
                  "italy_serie-a/2016-2017/2016-09-18 - 21-45 Fiorentina 1 - 0 AS Roma"]}
PASSWORD = "nda-Secret-4711"


class FakeDownloader:
    """Writes each requested file of each game of the split, and remembers what it was given."""
    calls = []

    def __init__(self, LocalDirectory):
        self.LocalDirectory = LocalDirectory
        self.password = None

    def downloadGames(self, files, split, task):
        assert task == "caption"
        type(self).calls.append((list(files), list(split), self.password))
        for game in GAMES[split[0]]:
            for file in files:
                path = Path(self.LocalDirectory, game, file)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")


@pytest.fixture
def fake_soccernet(monkeypatch):
    FakeDownloader.calls = []
    monkeypatch.setattr(Downloader, "SoccerNetDownloader", FakeDownloader)
    monkeypatch.setattr(utils, "getListGames", lambda split, task: GAMES[split])
    monkeypatch.delenv("SOCCERNET_PASSWORD", raising=False)
    return FakeDownloader


def everything_written(root) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


def test_labels_and_features_then_skips_what_is_present(fake_soccernet, tmp_path, capsys):
    root = tmp_path / "SoccerNet"
    assert main(["download", str(root), "--features", "baidu", "resnet_pca512", "--split", "test"]) == 0
    (files, split, password), = fake_soccernet.calls
    assert files == ["Labels-caption.json", "1_baidu_soccer_embeddings.npy", "2_baidu_soccer_embeddings.npy",
                     "1_ResNET_TF2_PCA512.npy", "2_ResNET_TF2_PCA512.npy"]
    assert split == ["test"] and password is None  # no password asked for labels and features
    assert (root / GAMES["test"][1] / "2_ResNET_TF2_PCA512.npy").is_file()
    assert "test: Labels-caption.json: 2 downloaded, 0 already present, 0 missing" in capsys.readouterr().out

    assert main(["download", str(root), "--features", "baidu", "--split", "test"]) == 0
    assert len(fake_soccernet.calls) == 1  # everything present: the downloader is not called
    assert "1_baidu_soccer_embeddings.npy: 0 downloaded, 2 already present" in capsys.readouterr().out


def test_nda_password_reaches_the_downloader_and_nothing_else(fake_soccernet, tmp_path, capsys, monkeypatch):
    root = tmp_path / "SoccerNet"
    monkeypatch.setenv("SOCCERNET_PASSWORD", PASSWORD)
    assert main(["download", str(root), "--what", "labels", "videos", "--videos", "720p", "--split", "test"]) == 0
    (files, _, password), = fake_soccernet.calls
    assert files == ["Labels-caption.json", "1_720p.mkv", "2_720p.mkv"] and password == PASSWORD
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err and PASSWORD.encode() not in everything_written(root)
    assert PASSWORD not in "".join(str(p) for p in root.rglob("*"))

    monkeypatch.delenv("SOCCERNET_PASSWORD")  # no variable: asked for at the terminal
    monkeypatch.setattr("getpass.getpass", lambda prompt: PASSWORD + "2")
    assert main(["download", str(root), "--what", "videos", "--videos", "224p", "--split", "test"]) == 0
    assert fake_soccernet.calls[-1][2] == PASSWORD + "2"


def test_offline_is_one_clear_error_without_the_password(fake_soccernet, tmp_path, capsys, monkeypatch):
    def unreachable(self, files, split, task):
        raise ConnectionError(f"[Errno -3] Temporary failure in name resolution (auth {self.password})")

    monkeypatch.setattr(FakeDownloader, "downloadGames", unreachable)
    monkeypatch.setenv("SOCCERNET_PASSWORD", PASSWORD)
    assert main(["download", str(tmp_path / "SoccerNet"), "--what", "videos", "--split", "test"]) == 1
    out, err = capsys.readouterr()
    assert "star download: error: test split, files 1_224p.mkv, 2_224p.mkv" in err
    assert "huggingface.co" in err and "name resolution" in err and "Traceback" not in err
    assert PASSWORD not in out + err


def test_missing_soccernet_package_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "SoccerNet", None)
    assert main(["download", str(tmp_path)]) == 1
    assert "pip install SoccerNet" in capsys.readouterr().err
