"""The real path end to end: a SoccerNet tree of three games in the real formats (Labels-caption.json, Baidu-shaped
8576-d 1 fps `.npy` features, Game State predictions JSON, game list files, no videos) runs through the workflow to
Table 1 with a `--configfile` override; a Baidu file of the wrong dimension or rate stops its import job. The tree
also holds SoccerNet-v1's C3D (4096-d) and I3D (1024-d) 2-fps files, from which a slow test builds Table 1's C3D
and I3D blocks."""

import json
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from star.cli import main
from star.data.games import game_id
from star.data.soccernet import format_game_time
from star.data.predictions import load_predictions
from tests.conftest import copy_workflow, snakemake
from tests.test_pipeline import FAST
from tests.test_workflow import planned_jobs
from tests.videos import write_video

HALF_S = 120          # short halves: this checks the chain, not the models' quality
BAIDU_DIM = 8576
V1_FEATURES = {"C3D": 4096, "I3D": 1024}   # SoccerNet-v1, 2 fps; I3D's 64-frame context drops a few rows
GSR_FPS = 25          # Game State image ids count 25-fps frames, as SoccerNet GSR clips do
GAMES = {             # real-style folder names: spaces, dashes, a comma
    "train": "england_epl/2014-2015/2015-05-17 - 18-00 Manchester United 1 - 1 Arsenal",
    "valid": "spain_laliga/2016-2017/2016-09-10 - 21-45 Barcelona 1 - 2 Alaves",
    "test": "italy_serie-a/2015-2016/2015-11-22 - 22-45 Inter 4 - 0 Frosinone, Round 13",
}
EVENTS = [   # (second of the half, label, anonymized caption)
    (14, "corner", "[PLAYER] ([TEAM]) takes the corner but it is cleared."),
    (37, "y-card", "[PLAYER] ([TEAM]) is booked by [REFEREE] after a late tackle."),
    (58, "soccer-ball", "Goal! [PLAYER] ([TEAM]) finishes from close range."),
    (81, "substitution", "[COACH] makes a change: [PLAYER] replaces [PLAYER] for ([TEAM])."),
    (104, "comments", "[PLAYER] ([TEAM]) shoots from distance, well wide of the goal."),
]


def labels_json(path: str, seed: int) -> dict:
    """A Labels-caption.json in SoccerNet's schema (top-level game fields, lineup, annotations)."""
    home, away = path.split("/")[-1].split(" - ")[1].split(" ", 1)[1], "Away FC"
    annotations = []
    for half in (1, 2):
        for second, label, caption in EVENTS:
            second += seed + half   # different times per game and half
            annotations.append({
                "gameTime": format_game_time(half, second), "label": label, "position": str(second * 1000),
                "half": str(half), "important": label in ("soccer-ball", "y-card"), "visibility": "visible",
                "identified": caption.replace("[PLAYER]", "John Smith").replace("[TEAM]", home),
                "description": caption.replace("[PLAYER]", "John Smith").replace("[TEAM]", home),
                "anonymized": caption,
            })
    player = {"long_name": "John Smith", "short_name": "J. Smith", "shirt_number": 9, "captain": "",
              "starting": True, "country": "England", "position": "F", "facts": []}
    return {
        "UrlLocal": path + "/", "UrlYoutube": "", "gameHomeTeam": home, "gameAwayTeam": away,
        "gameScore": "1 - 1", "score": "1 - 1", "round": "38", "timestamp": 1431878400,
        "gameDate": "17/05/2015 - 18:00", "venue": ["Stadium"], "referee_matches": ["A Referee"],
        "lineup": {"home": {"players": [player], "coach": [], "tactic": "4-3-3"},
                   "away": {"players": [player], "coach": [], "tactic": "4-4-2"}},
        "annotations": annotations,
    }


def baidu_features(events: list[int], rows: int, seed: int, dim: int = BAIDU_DIM, fps: int = 1) -> np.ndarray:
    """[rows, dim] float32 noise with a bump on a few channels around each event second (a little signal)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(0, 1, (rows, dim)).astype(np.float32)
    for second in events:
        features[max(second - 2, 0) * fps:(second + 3) * fps, :64] += 3.0
    return features


def gamestate_predictions(half: int, seed: int) -> dict:
    """tracklab/sn-gamestate output: one entry per person at every 25th frame (1 fps of a 25-fps clip), image ids
    in GSR form (1, video 0XX, frame from 1), bbox_pitch in metres."""
    rng = np.random.default_rng(seed)
    predictions = []
    for second in range(HALF_S):
        image_id = f"1{60 + half:03d}{GSR_FPS * second + 1:06d}"
        for person in range(12):
            role = "goalkeeper" if person == 0 else "referee" if person == 11 else "player"
            x, y = float(rng.uniform(-52.5, 52.5)), float(rng.uniform(-34, 34))
            predictions.append({
                "image_id": image_id, "track_id": person + 1, "supercategory": "object", "category_id": 1,
                "attributes": {"role": role, "team": None if role == "referee" else ("left", "right")[person % 2],
                               "jersey": str(person + 1)},
                "bbox_image": {"x": 100.0, "y": 200.0, "w": 20.0, "h": 50.0},
                "bbox_pitch": {"x_bottom_middle": x, "y_bottom_middle": y, "x_bottom_left": x - 0.4,
                               "y_bottom_left": y, "x_bottom_right": x + 0.4, "y_bottom_right": y},
                "confidence": 0.9,
            })
    return {"predictions": predictions}


def build_tree(root, work) -> dict:
    """Write the tree, the game lists and the fixture config; returns the config."""
    for seed, (split, path) in enumerate(GAMES.items()):
        folder = root / path
        folder.mkdir(parents=True)
        labels = labels_json(path, seed)
        (folder / "Labels-caption.json").write_text(json.dumps(labels, indent=4))
        for half in (1, 2):
            events = [int(a["position"]) // 1000 for a in labels["annotations"] if a["half"] == str(half)]
            np.save(folder / f"{half}_baidu_soccer_embeddings.npy", baidu_features(events, HALF_S, 10 * seed + half))
            for name, dim in V1_FEATURES.items():
                rows = 2 * HALF_S - (3 if name == "I3D" else 0)
                full = baidu_features(events, rows, 100 * seed + half, dim, fps=2)
                np.save(folder / f"{half}_{name}.npy", full)
                np.save(folder / f"{half}_{name}_PCA512.npy", full[:, :512].copy())
            (folder / f"{half}_gamestate.json").write_text(json.dumps(gamestate_predictions(half, seed)))
        (work / f"{split}.txt").write_text(f"# {split} games\n{path}\n")
    return {
        "dataset": {"source": "soccernet", "root": str(root),
                    "splits": {split: str(work / f"{split}.txt") for split in GAMES}},
        "features": {"encoders": ["baidu"]},
        "positions": {"backend": "gamestate_json", "gamestate_json": {"file": "{half}_gamestate.json", "fps": GSR_FPS}},
        **FAST,
    }


@pytest.fixture(scope="module")
def soccernet_run(tmp_path_factory):
    """The fixture tree, a copy of the workflow (its code hashes stay put while the checkout is edited), and a
    workflow directory where `results/table1.csv` was built from the tree."""
    base = tmp_path_factory.mktemp("soccernet")
    root, work, snakefile = base / "SoccerNet", base / "work", copy_workflow(base / "workflow") / "Snakefile"
    work.mkdir()
    config = build_tree(root, work)
    (work / "tiny.yaml").write_text(yaml.safe_dump(config))   # the helper's override file
    snakemake(work, "--cores", "2", "--", "results/table1.csv", snakefile=snakefile)
    return root, work, snakefile


def test_table1_from_a_soccernet_tree(soccernet_run):
    root, work, snakefile = soccernet_run
    table = pd.read_csv(work / "results/table1.csv")
    assert table["Method"].tolist() == ["SDVC", "Delta", "STaR", "PDVC", "Vid2Seq"]
    assert set(table["Encoder"]) == {"Baidu"} and set(table["F"]) == {1}
    assert table[["M@30", "Recall", "Precision"]].notna().all().all()

    ids = {split: game_id(path) for split, path in GAMES.items()}
    for gid in ids.values():
        for half in (1, 2):
            with h5py.File(work / f"results/features/baidu/{gid}/{half}.h5") as h5:
                assert (h5.attrs["dim"], h5.attrs["fps"], h5.attrs["encoder"]) == (BAIDU_DIM, 1.0, "baidu")
                assert h5["features"].shape == (HALF_S, BAIDU_DIM)
            with h5py.File(work / f"results/positions/gamestate_json/{gid}/{half}.h5") as h5:
                assert h5.attrs["backend"] == "gamestate_json"
                sources = json.loads(h5.attrs["provenance"])["sources"]
                assert [path.split("/")[-1] for path in sources] == [f"{half}_gamestate.json"]
                assert h5["calibrated"][:].all() and h5["mask"][:].sum(axis=1).min() == 12
    assert not (work / "results/frames").exists()   # no video was needed

    for method in ("sdvc", "delta", "star", "pdvc", "vid2seq"):
        predictions = list((work / f"results/captioning/{method}/baidu/default/spots").rglob("*.json"))
        assert len(predictions) == 1   # the one test game
        halves, _ = load_predictions(predictions[0])
        assert halves[1] and halves[2]

    dry = snakemake(work, "-n", "--", "results/table1.csv", snakefile=snakefile)
    assert planned_jobs(dry) == {}


def test_bad_baidu_files_stop_their_import(soccernet_run, tmp_path):
    """In a copy of the tree: a file of the wrong dimension is refused; so is one of the wrong rate when the half's
    video gives the duration (2 rows a second against a 120-s video). Each job's log names its file."""
    root, work, snakefile = soccernet_run
    bad_root = tmp_path / "SoccerNet"
    shutil.copytree(root, bad_root)
    wrong_dim = bad_root / GAMES["test"] / "2_baidu_soccer_embeddings.npy"
    np.save(wrong_dim, np.zeros((HALF_S, 2048), np.float32))
    wrong_fps = bad_root / GAMES["valid"] / "1_baidu_soccer_embeddings.npy"
    np.save(wrong_fps, np.zeros((2 * HALF_S, BAIDU_DIM), np.float32))
    write_video(wrong_fps.parent / "1_224p.mkv", [0.0, HALF_S / 2, HALF_S - 1.0], rate=1)   # lasts HALF_S
    config = yaml.safe_load((work / "tiny.yaml").read_text())
    config["dataset"]["root"] = str(bad_root)
    bad_work = tmp_path / "work"
    bad_work.mkdir()
    (bad_work / "tiny.yaml").write_text(yaml.safe_dump(config))

    cases = {(GAMES["test"], 2): (wrong_dim, "2048-d but features.import.baidu.dim is 8576"),
             (GAMES["valid"], 1): (wrong_fps, "1 fps cover 240 s but the video lasts 120 s")}
    targets = [f"results/features/baidu/{game_id(game)}/{half}.h5" for game, half in cases]
    proc = snakemake(bad_work, "--cores", "2", "--keep-going", "--", *targets, snakefile=snakefile, check=False)
    assert proc.returncode != 0
    for (game, half), (npy, problem) in cases.items():
        assert not (bad_work / f"results/features/baidu/{game_id(game)}/{half}.h5").exists()
        log = (bad_work / f"results/logs/features_import/baidu_{game_id(game)}_{half}.log").read_text()
        assert f"{npy}: " in log and problem in log


@pytest.mark.slow
def test_table1_has_c3d_and_i3d_blocks(soccernet_run, tmp_path):
    """SoccerNet-v1's 2-fps C3D and I3D files (and their PCA512 versions) import with their own dimensions and
    give Table 1 its C3D and I3D encoder blocks, one row per method each, at F = 2."""
    root, work, snakefile = soccernet_run
    config = yaml.safe_load((work / "tiny.yaml").read_text())
    config["features"]["encoders"] = ["c3d", "i3d"]
    v1_work = tmp_path / "work"
    v1_work.mkdir()
    (v1_work / "tiny.yaml").write_text(yaml.safe_dump(config))
    snakemake(v1_work, "--cores", "2", "--", "results/table1.csv", snakefile=snakefile)

    table = pd.read_csv(v1_work / "results/table1.csv")
    assert list(zip(table["Encoder"], table["Method"], strict=True)) == [
        (encoder, method) for encoder in ("C3D", "I3D") for method in ("SDVC", "Delta", "STaR")]
    assert set(table["F"]) == {2} and table[["M@30", "Recall", "Precision"]].notna().all().all()
    gid = game_id(GAMES["test"])
    for encoder, dim in V1_FEATURES.items():
        with h5py.File(v1_work / f"results/features/{encoder.lower()}/{gid}/1.h5") as h5:
            assert (h5.attrs["dim"], h5.attrs["fps"]) == (dim, 2.0)
            assert h5["features"].shape == (2 * HALF_S - (3 if encoder == "I3D" else 0), dim)
    for name in ("c3d_pca512", "i3d_pca512"):   # the PCA512 files import too (512-d)
        out = tmp_path / f"{name}.h5"
        npy = root / GAMES["test"] / f"1_{name.split('_')[0].upper()}_PCA512.npy"
        assert main(["features-import", "--npy", str(npy), "--encoder", name, "--game", gid, "--half", "1",
                     "--out", str(out)]) == 0
        with h5py.File(out) as h5:
            assert h5.attrs["dim"] == 512 and h5.attrs["fps"] == 2.0
