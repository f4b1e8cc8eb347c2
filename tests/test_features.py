"""PP-TimesFormer (layout, load/save, embedding resize), extraction, fine-tuning, probe, .npy import."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest

from star.cli import main
from star.data.cache import cache_attrs, open_cache, write_cache
from star.data.soccernet import format_game_time
from star.errors import InputError
from star.features import timesformer as tf
from star.features.clips import clip_frame_indices
from star.provenance import sha256_file

paddle = tf.setup_paddle(threads=2)

LABEL_COLOURS = {"corner": (250, 20, 20), "soccer-ball": (20, 20, 250)}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "tiny.pdparams"
    tf.save_weights(tf.build_model(tf.PRESETS["tiny"], seed=1), path)
    return path


def write_frames(path, n: int, game="g", half=1, fps=1.0, events=(), seed=0, size=(36, 52)):
    """A frames cache of noise on grass green; each (second, label) event paints the centre for +-1 s."""
    rng = np.random.default_rng(seed)
    h, w = size
    frames = (np.array([40, 120, 50]) + rng.integers(0, 30, (n, h, w, 3))).astype(np.uint8)
    for second, label in events:
        for i in range(int((second - 1) * fps), int((second + 1) * fps) + 1):
            if 0 <= i < n:
                frames[i, h // 4:3 * h // 4, w // 4:3 * w // 4] = LABEL_COLOURS[label]
    times = np.arange(n) / fps
    return write_cache(path, "frames", {"frames": frames, "times": times}, {"stage": "test"},
                       game=game, half=half, fps=fps, width=w, height=h, source="test")


def write_labels(path, events_by_half: dict):
    annotations = [{"gameTime": format_game_time(half, s), "label": label, "anonymized": "a [PLAYER] moment"}
                   for half, events in events_by_half.items() for s, label in events]
    path.write_text(json.dumps({"annotations": annotations}))
    return path


def input_clips(cfg, batch=2, seed=0):
    x = np.random.default_rng(seed).random((batch, 3, cfg.frames, cfg.image_size, cfg.image_size))
    return paddle.to_tensor(x.astype("float32"))


# ----------------------------------------------------------------------------- model and weights

def test_base_key_layout_matches_paddlevideo():
    state = tf.build_model(tf.PRESETS["base"], lazy=True).state_dict()
    backbone = [k for k in state if k.startswith("backbone.")]
    assert len(backbone) == 223
    assert sorted(k for k in state if k.startswith("head.")) == ["head.fc.bias", "head.fc.weight"]
    assert tuple(state["backbone.cls_token"].shape) == (1, 1, 768)
    assert tuple(state["backbone.pos_embed"].shape) == (1, 197, 768)
    assert tuple(state["backbone.time_embed"].shape) == (1, 8, 768)
    assert tuple(state["backbone.patch_embed.proj.weight"].shape) == (768, 3, 16, 16)
    block = {k.removeprefix("backbone.blocks.11.") for k in state if k.startswith("backbone.blocks.11.")}
    assert block == {f"{layer}.{p}" for layer in ("norm1", "attn.proj", "temporal_norm1", "temporal_attn.proj",
                                                   "temporal_fc", "norm2", "mlp.fc1", "mlp.fc2")
                     for p in ("weight", "bias")} | {"attn.qkv.weight", "temporal_attn.qkv.weight"}


def test_round_trip_and_plain_pickle(tiny_weights, tmp_path):
    model, cfg, sha = tf.load_model("tiny", tiny_weights)
    assert sha == sha256_file(tiny_weights)
    reference = tf.build_model(tf.PRESETS["tiny"], seed=1)
    x = input_clips(cfg)
    with paddle.no_grad():
        expected = reference.features(x).numpy()
        np.testing.assert_array_equal(model.features(x).numpy(), expected)
    assert expected.shape == (2, 192)
    # a PaddleVideo file: plain pickle of {name: ndarray} with the structured-name map
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    plain = tmp_path / "plain.pdparams"
    plain.write_bytes(pickle.dumps({**state, tf.NAME_MAP_KEY: {k: k for k in state}}, protocol=2))
    again, _, _ = tf.load_model("tiny", plain)
    with paddle.no_grad():
        np.testing.assert_array_equal(again.features(x).numpy(), expected)


def test_time_embed_from_checkpoint_and_resized(tmp_path):
    path = tmp_path / "t8.pdparams"
    source = tf.build_model(tf.build_config("tiny", frames=8), seed=2)
    source.backbone.time_embed.set_value(paddle.arange(8 * 192, dtype="float32").reshape([1, 8, 192]))
    tf.save_weights(source, path)
    time8 = source.backbone.time_embed.numpy()
    _, cfg, _ = tf.load_model("tiny", path)
    assert cfg.frames == 8  # T comes from the checkpoint when the config leaves it null
    model, cfg, _ = tf.load_model("tiny", path, frames=4)
    assert cfg.frames == 4
    np.testing.assert_array_equal(model.backbone.time_embed.numpy(), time8[:, [0, 2, 4, 6]])


def test_pos_embed_resized_to_patch_grid(tmp_path):
    state = {k: v.numpy() for k, v in tf.build_model(tf.PRESETS["tiny"]).state_dict().items()}
    grid8 = np.random.default_rng(0).random((1, 1 + 64, 192)).astype(np.float32)  # a 128-px checkpoint
    state["backbone.pos_embed"] = grid8
    path = tmp_path / "p128.pdparams"
    paddle.save(state, str(path))
    model, _, _ = tf.load_model("tiny", path)
    pos = model.backbone.pos_embed.numpy()
    assert pos.shape == (1, 17, 192)
    np.testing.assert_array_equal(pos[:, 0], grid8[:, 0])  # the CLS position is kept
    rows = np.array([r * 8 + c for r in (0, 2, 4, 6) for c in (0, 2, 4, 6)])
    np.testing.assert_array_equal(pos[:, 1:], grid8[:, 1 + rows])


def test_weights_errors_name_the_file_and_keys(tmp_path):
    missing = tmp_path / "nope.pdparams"
    with pytest.raises(InputError, match="nope.pdparams.*does not exist"):
        tf.load_model("tiny", missing)
    garbage = tmp_path / "garbage.pdparams"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="garbage.pdparams.*not a readable"):
        tf.load_model("tiny", garbage)
    state = {k: v.numpy() for k, v in tf.build_model(tf.PRESETS["tiny"]).state_dict().items()}
    del state["backbone.norm.bias"]
    state["backbone.extra"] = np.zeros(3, np.float32)
    state["backbone.blocks.0.mlp.fc1.bias"] = np.zeros(5, np.float32)
    bad = tmp_path / "bad.pdparams"
    paddle.save(state, str(bad))
    with pytest.raises(InputError) as err:
        tf.load_model("tiny", bad)
    for needle in ("bad.pdparams", "backbone.norm.bias", "backbone.extra", "blocks.0.mlp.fc1.bias: checkpoint (5,)"):
        assert needle in str(err.value)


# ----------------------------------------------------------------------------- extraction

def test_clip_frames_are_centred_and_clamped():
    index = clip_frame_indices(np.arange(7.0), fps=1.0, frames=4, window_s=4.0)
    assert index.shape == (7, 4)
    assert index[0].tolist() == [0, 0, 0, 1]      # t-2, t-1 clamped to the first frame
    assert index[3].tolist() == [1, 2, 3, 4]
    assert index[6].tolist() == [4, 5, 6, 6]      # t+1 clamped to the last frame
    two_fps = clip_frame_indices(np.arange(10) / 2, fps=2.0, frames=4, window_s=2.0)
    assert two_fps.shape == (5, 4)                 # one clip per second of a 5-s video
    assert two_fps[2].tolist() == [2, 3, 4, 5]     # 1.0, 1.5, 2.0, 2.5 s


def test_baidu_aligned_clips_sample_their_window_from_their_second_on():
    # Baidu's SoccerNet features: clip i's 16 frames over [i, i + 5 s); decoded at 4 fps, clip 10 reads 10.0 s
    # (frame 40) to 14.6875 s (nearest frame 58.75 -> 59), every 0.3125 s
    times = np.arange(0, 60, 0.25)
    index = clip_frame_indices(times, fps=4.0, frames=16, window_s=5.0, alignment="start")
    assert index.shape == (60, 16)
    assert index[10, 0] == 40 and index[10, -1] == 59
    assert times[index[10]].min() >= 10.0 and times[index[10]].max() < 15.0
    centred = clip_frame_indices(times, fps=4.0, frames=16, window_s=5.0, alignment="centre")
    assert times[centred[10, 0]] == 7.5  # a centred clip starts 2.5 s earlier
    from star.config import section
    from star.features.pptimesformer import clip_window

    assert clip_window(section("features.pptimesformer", {"preset": "base"})) == (5.0, "start")
    assert clip_window(section("features.pptimesformer", {"preset": "tiny"})) == (4.0, "centre")
    assert clip_window(section("features.pptimesformer", {"preset": "base", "alignment": "centre"})) == (5.0, "centre")


def test_extract_features_cache(tiny_weights, tmp_path, capsys):
    frames = write_frames(tmp_path / "frames.h5", 9, game="game-a", half=2)
    outs = []
    for name, batch in (("a.h5", 4), ("b.h5", 32)):
        out = tmp_path / name
        config = json.dumps({"batch_size": batch})
        assert main(["features-extract", "--frames", str(frames), "--out", str(out), "--weights",
                     str(tiny_weights), "--config", config, "--threads", "2"]) == 0
        with open_cache(out, "features", fps=1.0, dim=192) as h5:
            outs.append(h5["features"][:])
    assert outs[0].shape == (9, 192) and np.isfinite(outs[0]).all()
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)  # batching does not change a clip
    attrs = cache_attrs(tmp_path / "a.h5")
    assert (attrs["game"], attrs["half"], attrs["encoder"]) == ("game-a", 2, "pptimesformer")
    assert attrs["weights_sha256"] == sha256_file(tiny_weights)
    assert attrs["provenance"]["stage"] == "features-extract" and attrs["provenance"]["code_hash"]
    # deterministic: a rerun gives the same bytes of features
    assert main(["features-extract", "--frames", str(frames), "--out", str(tmp_path / "c.h5"), "--weights",
                 str(tiny_weights), "--config", json.dumps({"batch_size": 4})]) == 0
    with open_cache(tmp_path / "c.h5", "features") as h5:
        np.testing.assert_array_equal(h5["features"][:], outs[0])
    # no weights: a clear error, not a traceback
    capsys.readouterr()
    assert main(["features-extract", "--frames", str(frames), "--out", str(tmp_path / "d.h5")]) == 1
    assert "no encoder weights" in capsys.readouterr().err
    assert not (tmp_path / "d.h5").exists()


# ----------------------------------------------------------------------------- fine-tuning

def make_event_halves(tmp_path, games=2, n=40):
    """(frames paths, labels paths) of `games` games x 2 halves with coloured events every ~8 s."""
    frames, labels = [], []
    for g in range(games):
        events = {half: [(s, "corner" if (s // 8 + half + g) % 2 else "soccer-ball") for s in range(4, n - 2, 8)]
                  for half in (1, 2)}
        label_path = write_labels(tmp_path / f"g{g}.json", events)
        for half in (1, 2):
            frames.append(write_frames(tmp_path / f"g{g}_{half}.h5", n, f"g{g}", half, events=events[half],
                                       seed=10 * g + half))
            labels.append(label_path)
    return [str(p) for p in frames], [str(p) for p in labels]


def test_finetune_lowers_loss_and_writes_loadable_weights(tmp_path):
    frames, labels = make_event_halves(tmp_path)
    config = json.dumps({"finetune": {"steps": 12, "batch_size": 8, "lr": 0.001}})
    out, report = tmp_path / "enc.pdparams", tmp_path / "report.json"
    assert main(["encoder-finetune", "--frames", *frames, "--labels", *labels, "--out", str(out),
                 "--report", str(report), "--config", config, "--seed", "3"]) == 0
    result = json.loads(report.read_text())
    assert len(result["loss"]) == 12
    assert result["loss_last"] < result["loss_first"]
    assert set(result["class_counts"]) == {"background", "corner", "soccer-ball"}
    assert result["weights_sha256"] == sha256_file(out) and result["time_s"] > 0
    model, cfg, _ = tf.load_model("tiny", out)
    assert cfg.num_classes == len(result["classes"])


def test_finetune_is_deterministic(tmp_path):
    from star.features.finetune import load_training_set, train

    frames, labels = make_event_halves(tmp_path, games=1, n=20)
    data = load_training_set(list(zip(frames, labels, strict=True)), 64, 4, 4.0, 2.0)
    cfg = {"steps": 3, "batch_size": 4, "lr": 1e-3, "weight_decay": 0.05}
    runs = []
    for _ in range(2):
        model = tf.build_model(tf.build_config("tiny", num_classes=14), seed=5)
        runs.append(train(model, *data, cfg, seed=5)["loss"])
    assert runs[0] == runs[1]


def test_finetune_refuses_unpaired_lists(tmp_path, capsys):
    assert main(["encoder-finetune", "--frames", "a.h5", "b.h5", "--labels", "a.json", "--out",
                 str(tmp_path / "w.pdparams"), "--report", str(tmp_path / "r.json")]) == 1
    assert "pair up" in capsys.readouterr().err


# ----------------------------------------------------------------------------- probe

def write_features(path, labels_per_second: np.ndarray, half: int, seed: int, informative: bool = True):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(len(labels_per_second), 8)).astype(np.float32)
    if informative:
        features[np.arange(len(features)), labels_per_second % 8] += 3.0
    return write_cache(path, "features", {"features": features}, {"stage": "test"},
                       game="g", half=half, fps=1.0, dim=8, encoder="test")


def test_probe_report(tmp_path):
    from star.features.finetune import sample_labels
    from star.data.soccernet import load_labels

    n = 120
    events = {h: [(s, "corner" if (s // 10) % 2 else "soccer-ball") for s in range(5, n - 5, 10)] for h in (1, 2)}
    labels = write_labels(tmp_path / "labels.json", events)
    paths, frames = {}, {}
    for half in (1, 2):
        y = sample_labels(load_labels(labels).half(half), np.arange(n, dtype=float), 2.0)
        paths[half] = str(write_features(tmp_path / f"f{half}.h5", y, half, seed=half))
        frames[half] = str(write_frames(tmp_path / f"fr{half}.h5", n, half=half, events=events[half], seed=half))
    report = tmp_path / "probe.json"
    assert main(["features-probe", "--train", paths[1], "--train-labels", str(labels), "--test", paths[2],
                 "--test-labels", str(labels), "--train-frames", frames[1], "--test-frames", frames[2],
                 "--out", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["chance_balanced_accuracy"] == pytest.approx(1 / 3)
    assert 0.5 < result["majority_class_rate"] < 1
    assert set(result["test_class_counts"]) == {"background", "corner", "soccer-ball"}
    assert result["features"]["balanced_accuracy"] > 0.9
    # events are painted +-1 s around the annotation, labels reach +-2 s: colour helps, but less
    assert result["chance_balanced_accuracy"] < result["mean_colour"]["balanced_accuracy"] < 0.9
    assert set(result["features"]["recall_per_class"]) == {"background", "corner", "soccer-ball"}


# ----------------------------------------------------------------------------- .npy import

IMPORT_CONFIG = json.dumps({"file": "{half}_baidu.npy", "fps": 1, "dim": 16})  # features.import.baidu


def run_import(npy, out, *extra):
    return main(["features-import", "--npy", str(npy), "--encoder", "baidu", "--game", "g", "--half", "1",
                 "--out", str(out), "--config", IMPORT_CONFIG, *extra])


def test_import_writes_declared_fps_and_dim(tmp_path):
    rows = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float64)
    np.save(tmp_path / "1_baidu.npy", rows)
    frames = write_frames(tmp_path / "frames.h5", 300, game="g", half=1, size=(8, 8))
    assert run_import(tmp_path / "1_baidu.npy", tmp_path / "out.h5", "--frames", str(frames)) == 0
    with open_cache(tmp_path / "out.h5", "features", fps=1.0, dim=16, encoder="baidu") as h5:
        np.testing.assert_allclose(h5["features"][:], rows.astype(np.float32))


def test_import_defaults_to_the_schema_spec(tmp_path):
    np.save(tmp_path / "1_baidu.npy", np.ones((6, 8576), np.float32))
    out = tmp_path / "out.h5"
    assert main(["features-import", "--npy", str(tmp_path / "1_baidu.npy"), "--encoder", "baidu", "--game", "g",
                 "--half", "1", "--out", str(out), "--duration", "6"]) == 0
    with open_cache(out, "features", fps=1.0, dim=8576, encoder="baidu") as h5:
        assert h5["features"].shape == (6, 8576)


def test_import_checks_rows_against_the_video(tmp_path, capsys):
    from tests.videos import write_video

    video = write_video(tmp_path / "1_224p.mkv", [k / 5 for k in range(60)], rate=5)  # 12 s
    npy = tmp_path / "1_baidu.npy"
    np.save(npy, np.zeros((12, 16), np.float32))
    assert run_import(npy, tmp_path / "ok.h5", "--video", str(video)) == 0
    np.save(npy, np.zeros((24, 16), np.float32))  # a 2-fps file declared 1 fps
    assert run_import(npy, tmp_path / "bad.h5", "--video", str(video)) == 1
    assert "rows fit 2.00 fps" in capsys.readouterr().err


def test_import_without_a_video_checks_rows_reach_the_last_annotation(tmp_path, capsys):
    labels = tmp_path / "Labels-caption.json"
    labels.write_text(json.dumps({"annotations": [
        {"gameTime": "1 - 04:00", "label": "corner", "anonymized": "Corner."},
        {"gameTime": "2 - 09:00", "label": "corner", "anonymized": "Corner."}]}))  # half 2 is not checked here
    npy = tmp_path / "1_baidu.npy"
    np.save(npy, np.zeros((300, 16), np.float32))
    assert run_import(npy, tmp_path / "ok.h5", "--labels", str(labels)) == 0
    np.save(npy, np.zeros((120, 16), np.float32))  # e.g. a 0.5-fps file declared 1 fps, or a truncated one
    assert run_import(npy, tmp_path / "bad.h5", "--labels", str(labels)) == 1
    err = capsys.readouterr().err
    assert "1_baidu.npy" in err and "half 1 has an annotation at 240 s" in err
    assert not (tmp_path / "bad.h5").exists()


@pytest.mark.parametrize("array, extra, message", [
    (np.zeros((600, 16)), ["--duration", "300"], r"600 rows at the declared 1 fps cover 600 s.*2\.00 fps"),
    (np.zeros((300, 12)), [], r"12-d but features\.import\.baidu\.dim is 16"),
    (np.zeros(300), [], r"expected a 2-D array"),
    (np.where(np.arange(300)[:, None] == 137, np.nan, np.zeros((300, 16))), [], r"row 137 .* NaN or inf"),
])
def test_import_refuses_bad_files(tmp_path, capsys, array, extra, message):
    npy = tmp_path / "1_baidu.npy"
    np.save(npy, array)
    assert run_import(npy, tmp_path / "out.h5", *extra) == 1
    err = capsys.readouterr().err
    assert "1_baidu.npy" in err
    assert re.search(message, err), err
    assert not (tmp_path / "out.h5").exists()
