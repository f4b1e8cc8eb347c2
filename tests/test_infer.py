"""Inference: NMS on constructed scores, and the four model commands chained on a miniature dataset (spots per half,
the official predictions file with a caption per half, ground-truth anchors, bad input, the trained-model file)."""

import json

import numpy as np
import pytest

from star.cli import main
from star.data.soccernet import load_labels
from star.data.predictions import load_predictions
from star.infer.spots import nms
from star.model_file import load_model
from tests.caches import EVENTS, write_store

FAST = {"steps": 4, "batch_size": 8, "eval_every": 2, "checkpoint_every": 2, "warmup_steps": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_nms_keeps_peaks_apart_and_above_threshold():
    scores = np.zeros(100)
    scores[[10, 14, 30, 60, 61, 90]] = [0.9, 0.95, 0.8, 0.3, 0.75, 0.6]
    assert nms(scores, window_s=10, threshold=0.5) == [14, 30, 61, 90]   # 10 is within 5 s of 14
    assert nms(scores, window_s=40, threshold=0.5) == [14, 61, 90]        # 10 and 30 within 20 s of 14
    assert nms(scores, window_s=10, threshold=0.99) == [14]               # none passes: the best one stays
    close = np.zeros(40)
    close[[14, 22]] = [0.9, 0.8]
    assert nms(close, 10, 0.5, fps=1) == [14, 22] and nms(close, 10, 0.5, fps=2) == [14]   # 8 s vs 4 s apart
    assert nms(np.zeros(0), 10, 0.5) == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An SDVC spotter and captioner trained for a few steps on the miniature dataset."""
    store = write_store(tmp_path_factory.mktemp("store"))
    cfg = json.dumps({"spotting": {"train": FAST}, "captioning": {"train": FAST, "beam_size": 1, "max_tokens": 12},
                      "model": {"preset": "tiny"}})
    common = ["--method", "sdvc", "--manifest", str(store["manifest"]), "--labels-root", str(store["labels_root"]),
              "--features", str(store["features"]), "--config", cfg]
    out = store["root"] / "models"
    for stage in ("spotting", "captioning"):
        assert main([f"{stage}-train", *common, "--out", str(out / f"{stage}.safetensors"),
                     "--report", str(out / f"{stage}.json")]) == 0
    return {**store, "cfg": cfg, "spotter": out / "spotting.safetensors", "captioner": out / "captioning.safetensors"}


def test_training_writes_the_model_and_a_report_and_no_checkpoint(trained):
    report = json.loads((trained["root"] / "models/spotting.json").read_text())
    assert report["stage"] == "spotting-train" and report["steps"] == 4 and report["window"] == 15
    assert report["curve"] and report["code_hash"]
    assert not list((trained["root"] / "models").glob("*.ckpt"))
    model, content = load_model(trained["spotter"], "spotting")
    assert content["method"] == "sdvc" and content["feature_dim"] == 16 and not model.training
    with pytest.raises(Exception, match="not a spotting model"):
        load_model(trained["captioner"], "spotting")


def spot(trained, tmp_path, half=1, threshold=None):
    test = trained["games"][2]
    out = tmp_path / f"spots{half}.json"
    cfg = json.loads(trained["cfg"])
    if threshold is not None:
        cfg["spotting"] |= {"threshold": threshold}
    assert main(["spotting-infer", "--model", str(trained["spotter"]), "--config", json.dumps(cfg),
                 "--features", str(trained["features"] / test.id / f"{half}.h5"), "--out", str(out)]) == 0
    return out


def test_spotting_scores_every_second_and_keeps_at_least_one_spot(trained, tmp_path):
    data = json.loads(spot(trained, tmp_path, threshold=1.0).read_text())
    assert len(data["confidence"]) == 60 and len(data["label"]) == 60
    best = int(np.argmax(data["confidence"]))
    assert [s["seconds"] for s in data["spots"]] == [best]   # nothing reaches 1.0: the best second is kept
    spots = json.loads(spot(trained, tmp_path, threshold=0.0).read_text())["spots"]
    seconds = [s["seconds"] for s in spots]
    assert len(seconds) > 1 and min(np.diff(seconds)) > 15   # NMS window 30 s: kept spots are > 15 s apart


def test_captions_on_spots_follow_the_official_format(trained, tmp_path):
    test = trained["games"][2]
    out = tmp_path / "pred" / test.path / "results_dense_captioning.json"
    spots = [spot(trained, tmp_path, half) for half in (1, 2)]
    assert main(["captioning-infer", "--model", str(trained["captioner"]), "--game-path", test.path,
                 "--features", *(str(trained["features"] / test.id / f"{h}.h5") for h in (1, 2)),
                 "--spots", *map(str, spots), "--out", str(out), "--config", trained["cfg"]]) == 0
    predictions, outside = load_predictions(out)
    assert not outside and all(predictions[h] for h in (1, 2))
    assert json.loads(out.read_text())["UrlLocal"] == test.path
    kept = {(h, s["seconds"]) for h, path in zip((1, 2), spots, strict=True)
            for s in json.loads(path.read_text())["spots"]}
    assert {(h, c.seconds) for h in (1, 2) for c in predictions[h]} == kept


def test_ground_truth_anchors_give_one_caption_per_annotation(trained, tmp_path):
    test = trained["games"][2]
    labels = trained["labels_root"] / test.path / "Labels-caption.json"
    out = tmp_path / "gt.json"
    assert main(["captioning-infer", "--model", str(trained["captioner"]), "--game-path", test.path,
                 "--features", *(str(trained["features"] / test.id / f"{h}.h5") for h in (1, 2)),
                 "--labels", str(labels), "--out", str(out), "--config", trained["cfg"]]) == 0
    predictions, _ = load_predictions(out)
    truth = load_labels(labels)
    for h in (1, 2):
        assert [(c.seconds, c.label) for c in predictions[h]] == [(a.seconds, a.label) for a in truth.half(h)]
    assert len(predictions[1]) == len(EVENTS)


def test_one_call_over_several_halves_and_games_writes_what_one_call_each_writes(trained, tmp_path):
    """The workflow's inference jobs run a model over the whole test split in one process: the files must be those
    of one call per half (spotting) or per game (captioning), byte for byte."""
    games = trained["games"][1:3]
    halves = [str(trained["features"] / g.id / f"{h}.h5") for g in games for h in (1, 2)]
    together = [tmp_path / "split" / f"{i}.json" for i in range(len(halves))]
    assert main(["spotting-infer", "--model", str(trained["spotter"]), "--config", trained["cfg"],
                 "--features", *halves, "--out", *map(str, together)]) == 0
    for features, path in zip(halves, together, strict=True):
        alone = tmp_path / "alone.json"
        assert main(["spotting-infer", "--model", str(trained["spotter"]), "--config", trained["cfg"],
                     "--features", features, "--out", str(alone)]) == 0
        assert path.read_bytes() == alone.read_bytes()
    labels = [str(trained["labels_root"] / g.path / "Labels-caption.json") for g in games]
    outs = [tmp_path / "gt" / g.path / "results_dense_captioning.json" for g in games]
    assert main(["captioning-infer", "--model", str(trained["captioner"]), "--config", trained["cfg"],
                 "--game-path", *(g.path for g in games), "--features", *halves, "--labels", *labels,
                 "--out", *map(str, outs)]) == 0
    for i, (game, out) in enumerate(zip(games, outs, strict=True)):
        alone = tmp_path / "alone" / game.path / "results_dense_captioning.json"
        assert main(["captioning-infer", "--model", str(trained["captioner"]), "--config", trained["cfg"],
                     "--game-path", game.path, "--features", *halves[2 * i:2 * i + 2], "--labels", labels[i],
                     "--out", str(alone)]) == 0
        assert out.read_bytes() == alone.read_bytes()


def test_calls_joined_by_and_load_the_model_once_and_write_what_they_write_apart(trained, tmp_path, monkeypatch):
    """The workflow captions a run at its spots and at the ground truth in one process (`--and`)."""
    from star.infer import captions

    game = trained["games"][2]
    common = ["--model", str(trained["captioner"]), "--config", trained["cfg"], "--game-path", game.path,
              "--features", *(str(trained["features"] / game.id / f"{h}.h5") for h in (1, 2))]
    calls = [[*common, "--spots", *(str(spot(trained, tmp_path, h)) for h in (1, 2))],
             [*common, "--labels", str(trained["labels_root"] / game.path / "Labels-caption.json")]]
    loads = []
    monkeypatch.setattr(captions, "load_model", lambda *a: loads.append(a) or load_model(*a))
    captions._load_once.cache_clear()
    joined = [tmp_path / "joined" / f"{i}.json" for i in (0, 1)]
    assert main(["captioning-infer", *calls[0], "--out", str(joined[0]), "--and", *calls[1], "--out",
                 str(joined[1])]) == 0
    assert len(loads) == 1
    for call, path in zip(calls, joined, strict=True):
        alone = tmp_path / "alone.json"
        assert main(["captioning-infer", *call, "--out", str(alone)]) == 0
        assert path.read_bytes() == alone.read_bytes()


def test_lists_that_do_not_fit_are_refused_before_any_work(trained, tmp_path, capsys):
    game = trained["games"][2]
    halves = [str(trained["features"] / game.id / f"{h}.h5") for h in (1, 2)]
    assert main(["spotting-infer", "--model", str(trained["spotter"]), "--features", *halves,
                 "--out", str(tmp_path / "1.json")]) == 1
    assert "--features names 2 halves but --out 1" in capsys.readouterr().err
    assert main(["spotting-infer", "--model", str(trained["spotter"]), "--features", halves[0],
                 str(tmp_path / "missing.h5"), "--out", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    assert "missing.h5" in capsys.readouterr().err
    assert main(["captioning-infer", "--model", str(trained["captioner"]), "--game-path", game.path, "other",
                 "--features", *halves, "--labels", "x.json", "--out", str(tmp_path / "p.json")]) == 1
    assert "--game-path names 2 games but --out 1" in capsys.readouterr().err
    assert main(["captioning-infer", "--model", str(trained["captioner"]), "--game-path", game.path, "b", "c",
                 "--features", *halves, "--labels", "x.json", "--out", str(tmp_path / "p.json")]) == 1
    assert "--features names 2 halves for 3 games" in capsys.readouterr().err
    assert main(["captioning-infer", "--model", str(trained["captioner"]), "--game-path", game.path,
                 "--features", *halves, "--labels", "x.json", "y.json", "--out", str(tmp_path / "p.json")]) == 1
    assert "--game-path names 1 games but --labels 2" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))  # nothing written


def test_features_the_model_was_not_trained_on_are_refused(trained, tmp_path, capsys):
    from star.data.cache import write_cache

    odd = write_cache(tmp_path / "odd.h5", "features", {"features": np.zeros((60, 8), np.float32)}, {}, game="g",
                      half=1, fps=1.0, dim=8, encoder="test")
    assert main(["spotting-infer", "--model", str(trained["spotter"]), "--features", str(odd),
                 "--out", str(tmp_path / "s.json")]) == 1
    err = capsys.readouterr().err
    assert "odd.h5" in err and "8-d" in err and "16-d" in err and "Traceback" not in err
    assert main(["spotting-infer", "--model", str(tmp_path / "missing.pt"), "--features", str(odd),
                 "--out", str(tmp_path / "s.json")]) == 1
    assert "missing.pt" in capsys.readouterr().err


@pytest.mark.parametrize("sss_inputs", ["xy", "xy_team_role_ball"])
def test_star_reads_positions_and_global_features_through_every_stage(trained, tmp_path, sss_inputs):
    """STaR (tiny) through the same commands, with positions (and, for the second SSS input, team side, role and
    the ball): trains, spots and captions the test game."""
    test = trained["games"][2]
    cfg = json.loads(trained["cfg"])
    cfg["model"]["star"] = {"sss_inputs": sss_inputs}
    cfg["captioning"]["train"] |= {"steps": 2}
    cfg["spotting"]["train"] |= {"steps": 2}
    cfg = json.dumps(cfg)
    common = ["--method", "star", "--manifest", str(trained["manifest"]), "--labels-root",
              str(trained["labels_root"]), "--features", str(trained["features"]), "--positions",
              str(trained["positions"]), "--config", cfg]
    for stage in ("spotting", "captioning"):
        assert main([f"{stage}-train", *common, "--out", str(tmp_path / f"{stage}.safetensors")]) == 0
    halves = [(str(trained["features"] / test.id / f"{h}.h5"), str(trained["positions"] / test.id / f"{h}.h5"))
              for h in (1, 2)]
    spots = []
    for h, (features, positions) in enumerate(halves, 1):
        spots.append(str(tmp_path / f"spots{h}.json"))
        assert main(["spotting-infer", "--model", str(tmp_path / "spotting.safetensors"), "--features", features,
                     "--positions", positions, "--out", spots[-1], "--config", cfg]) == 0
    out = tmp_path / "pred.json"
    assert main(["captioning-infer", "--model", str(tmp_path / "captioning.safetensors"), "--game-path", test.path,
                 "--features", *(f for f, _ in halves), "--positions", *(p for _, p in halves), "--spots", *spots,
                 "--out", str(out), "--config", cfg]) == 0
    predictions, _ = load_predictions(out)
    assert predictions[1] and predictions[2]
    _, content = load_model(tmp_path / "captioning.safetensors", "captioning")
    assert content["model_cfg"].use_positions and content["norm"] is not None   # standardised inputs, saved
    assert content["model_cfg"].sss_inputs == sss_inputs
