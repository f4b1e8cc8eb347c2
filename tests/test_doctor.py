"""`star doctor`: a healthy SoccerNet fixture tree passes; each kind of damage is reported with its file."""

import json

import numpy as np
import pytest

from star.cli import main
from tests.videos import write_video

GAMES = ["england_epl/2014-2015/2015-02-21 - 18-00 Chelsea 1 - 1 Burnley",
         "italy_serie-a/2016-2017/2016-09-18 - 21-45 Fiorentina 1 - 0 AS Roma"]
HALF_S = 30  # fixture halves last 30 s


def annotation(game_time, label="comments"):
    half, clock = game_time.split(" - ")
    minutes, seconds = clock.split(":")
    return {"gameTime": game_time, "label": label, "position": str((60 * int(minutes) + int(seconds)) * 1000),
            "team": "home", "visibility": "visible", "important": False,
            "description": "Thiago Silva heads it away.", "identified": "Thiago Silva (Chelsea) heads it away.",
            "anonymized": "[PLAYER] ([TEAM]) heads it away."}


def write_labels(folder, annotations):
    folder.mkdir(parents=True, exist_ok=True)
    labels = {"UrlLocal": folder.name + "/", "gameHomeTeam": "Chelsea", "gameAwayTeam": "Burnley",
              "score": "1 - 1", "round": "27", "timestamp": "1424541600",
              "lineup": {"home": {"players": [{"long_name": "Thiago Silva", "shirt_number": 6}]},
                         "away": {"players": []}},
              "annotations": annotations}
    (folder / "Labels-caption.json").write_text(json.dumps(labels))


def write_features(path, rows, dim, nan_row=None):
    features = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
    if nan_row is not None:
        features[nan_row, 3] = np.nan
    np.save(path, features)


@pytest.fixture
def tree(tmp_path):
    """Two games in the real layout: game 0 with 224p videos, Baidu and PCA512; game 1 with Baidu only."""
    root = tmp_path / "SoccerNet"
    for i, game in enumerate(GAMES):
        folder = root / game
        write_labels(folder, [annotation("1 - 00:05", "corner"), annotation("1 - 00:25"), annotation("2 - 00:12")])
        for half in (1, 2):
            write_features(folder / f"{half}_baidu_soccer_embeddings.npy", HALF_S, 8576)
            if i == 0:
                write_features(folder / f"{half}_ResNET_TF2_PCA512.npy", 2 * HALF_S, 512)
                write_video(folder / f"{half}_224p.mkv", [float(t) for t in range(HALF_S + 1)])
    return root


def doctor(capsys, *args):
    code = main(["doctor", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out + err


def test_healthy_tree_passes(tree, tmp_path, capsys):
    code, report = doctor(capsys, tree, "--verbose")
    assert code == 0, report
    assert "2 games, 0 problems, 0 warnings" in report
    assert "1_ResNET_TF2_PCA512.npy: 60 rows x 512 at 2 fps = 30 s" in report and "1_224p.mkv: 30.0 s" in report
    games = tmp_path / "games.txt"
    games.write_text("\n".join(GAMES) + "\n")
    code, report = doctor(capsys, tree, "--games", games, "--features", "baidu")
    assert code == 0, report


def test_damaged_tree_reports_each_problem_with_its_file(tree, tmp_path, capsys):
    first, second = (tree / game for game in GAMES)
    write_features(first / "1_baidu_soccer_embeddings.npy", 2 * HALF_S, 8576)       # 2 fps named as Baidu
    write_features(first / "2_ResNET_TF2_PCA512.npy", 2 * HALF_S, 2048)            # wrong dimension
    write_labels(first, [annotation("1 - 00:05"), annotation("2 - 00:45")])        # beyond the 30 s video
    write_features(second / "1_baidu_soccer_embeddings.npy", HALF_S, 8576, nan_row=7)
    write_features(second / "1_ResNET_TF2.npy", HALF_S // 2, 2048)                 # 1 fps named as ResNET
    third = tree / "spain_laliga/2016-2017/2017-01-08 - 22-45 Barcelona 1 - 1 Villarreal"
    third.mkdir(parents=True)
    write_features(third / "1_baidu_soccer_embeddings.npy", HALF_S, 8576)         # no labels file
    fourth = tree / "spain_laliga/2016-2017/2017-02-19 - 18-30 Leganes 1 - 1 Barcelona"
    write_labels(fourth, [annotation("1 - 00:25"), {**annotation("2 - 00:12"), "gameTime": "3 - 00:12"}])
    games = tmp_path / "games.txt"
    listed = [*GAMES, "gone/2015-2016/missing game", *(g.relative_to(tree).as_posix() for g in (third, fourth))]
    games.write_text("\n".join(listed))

    code, report = doctor(capsys, tree, "--games", games)
    assert code == 1
    expected = [
        f"{first / '1_baidu_soccer_embeddings.npy'}: 60 rows at the declared 1 fps cover 60 s but the video lasts 30 s",
        f"{first / '2_ResNET_TF2_PCA512.npy'}: rows are 2048-d",
        f"{first / 'Labels-caption.json'}: 1 annotation(s) of half 2 lie beyond its video's 30 s",
        f"{second / '1_baidu_soccer_embeddings.npy'}: row 7",
        f"{second / '1_ResNET_TF2.npy'}: 15 rows at the declared 2 fps cover 8 s but half 1 has an annotation",
        f"{fourth / 'Labels-caption.json'}: annotation 1: gameTime '3 - 00:12'",
        f"{third / 'Labels-caption.json'}: labels file is missing",
        f"{tree / 'gone/2015-2016/missing game'}: listed in {games} but missing on disk",
    ]
    for line in expected:
        assert line in report, line
    assert f"5 games, {len(expected)} problems" in report


def test_features_longer_than_any_half_are_a_problem_without_video(tree, capsys, monkeypatch):
    monkeypatch.setattr("star.features.import_npy.LONGEST_HALF_S", 15)  # 30-s halves now look too long
    code, report = doctor(capsys, tree)
    assert code == 1 and "2 games, 2 problems" in report, report
    assert f"{tree / GAMES[1] / '1_baidu_soccer_embeddings.npy'}: 30 rows at the declared 1 fps cover 0.5 min, " \
        "longer than any SoccerNet half" in report  # game 0 has videos: its duration is known, no bound needed
