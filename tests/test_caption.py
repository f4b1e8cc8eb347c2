"""`star caption` on a tiny-world half video: a checkpoint exported from a (miniature) workflow run, the official
predictions JSON, SubRip subtitles and the HTML timeline; and its errors for missing checkpoint files and a
corrupt video."""

import html
import json
import re
import shutil

import pytest

from star.caption_video import half_of
from star.checkpoint import REQUIRED
from star.cli import main
from star.data.games import read_manifest
from star.data.soccernet import load_labels
from star.data.predictions import load_predictions
from star.viewer import HalfView, srt_text, write_page

FAST_TRAIN = {"steps": 2, "batch_size": 8, "eval_every": 2, "checkpoint_every": 2, "warmup_steps": 1,
              "max_valid_samples": 8}
FAST = {"spotting": {"train": FAST_TRAIN}, "captioning": {"train": FAST_TRAIN, "beam_size": 1, "max_tokens": 8}}
SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+)")


@pytest.fixture(scope="module")
def checkpoint(tiny_world, tmp_path_factory, one_torch_thread):
    """A STaR spotter and captioner trained for two steps beside the tiny world's caches, exported as a checkpoint
    the way a user who ran the workflow makes one."""
    run = tmp_path_factory.mktemp("run")
    results = run / "results"
    results.mkdir()
    for name in ("encoder", "features", "positions", "frames", "dataset", "world"):
        (results / name).symlink_to(tiny_world / "results" / name)
    common = ["--method", "star", "--manifest", str(results / "dataset/games.tsv"), "--labels-root",
              str(results / "world"), "--features", str(results / "features/pptimesformer"),
              "--positions", str(results / "positions/classical"), "--config", json.dumps(FAST)]
    for stage in ("spotting", "captioning"):
        out = results / f"{stage}/star/pptimesformer/default/model.safetensors"
        assert main([f"{stage}-train", *common, "--out", str(out)]) == 0
    ckpt = run / "checkpoint"
    assert main(["export", str(ckpt), "--from-results", str(results)]) == 0
    return ckpt


@pytest.fixture(scope="module")
def test_game(tiny_world, tmp_path_factory):
    """A copy of the test game's first half video and labels, in a folder named like a SoccerNet game."""
    game = next(g for g in read_manifest(tiny_world / "results/dataset/games.tsv") if g.split == "test")
    source = tiny_world / "results/world" / game.path
    folder = tmp_path_factory.mktemp("match") / game.path
    folder.mkdir(parents=True)
    for name in ("1_224p.mkv", "2_224p.mkv", "Labels-caption.json"):
        shutil.copy2(source / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def captioned(checkpoint, test_game):
    assert main(["caption", str(test_game / "1_224p.mkv"), "--checkpoint", str(checkpoint), "--threads", "1"]) == 0
    return test_game


def parse_srt(text: str) -> list[tuple[int, float, float, str]]:
    cues = []
    for block in text.strip().split("\n\n"):
        match = SRT_CUE.fullmatch(block)
        assert match, block
        n, h1, m1, s1, ms1, h2, m2, s2, ms2, caption = match.groups()
        start = int(h1) * 3600 + int(m1) * 60 + int(s1) + int(ms1) / 1000
        end = int(h2) * 3600 + int(m2) * 60 + int(s2) + int(ms2) / 1000
        cues.append((int(n), start, end, caption))
    return cues


def test_the_exported_checkpoint_holds_the_models_and_the_sections_they_ran_with(checkpoint, tiny_world):
    files = sorted(str(p.relative_to(checkpoint)) for p in checkpoint.rglob("*") if p.is_file())
    assert set(REQUIRED) | {"README.md"} <= set(files)
    assert not [f for f in files if f.endswith((".pt", ".pdparams", ".pkl", ".yaml"))]   # no pickle, one config
    cfg = json.loads((checkpoint / "config.json").read_text())
    assert cfg["decode"]["fps"] == 1 and cfg["positions"]["backend"] == "classical"
    assert cfg["features"]["pptimesformer"]["preset"] == "tiny" and cfg["features"]["pptimesformer"]["weights"] is None
    assert cfg["spotting"]["train"]["steps"] == 2 and cfg["captioning"]["beam_size"] == 1
    # the encoder's tensors are the workflow's .pdparams, exactly
    from safetensors.numpy import load_file

    from star.features.timesformer import read_weights

    encoder = read_weights(tiny_world / "results/encoder/pptimesformer_tiny.pdparams")
    exported = load_file(str(checkpoint / "encoder/model.safetensors"))
    assert exported.keys() == encoder.keys() and all((exported[k] == encoder[k]).all() for k in encoder)
    captioner = json.loads((checkpoint / "captioning/config.json").read_text())
    assert captioner["method"] == "star" and captioner["stage"] == "captioning" and captioner["tokenizer"]
    assert (checkpoint / "captioning/tokenizer.json").is_file()   # the tokenizer's own files, beside the weights
    card = (checkpoint / "README.md").read_text()
    assert "config hash" in card and "best valid loss" in card and "metrics: not evaluated" in card


def test_caption_writes_official_predictions_subtitles_and_a_timeline(captioned):
    halves, outside = load_predictions(captioned / "results_dense_captioning.json")
    assert len(halves[1]) >= 1 and not halves[2] and not outside
    data = json.loads((captioned / "results_dense_captioning.json").read_text())
    assert data["UrlLocal"].endswith(captioned.name)
    comments = [p["comment"] for p in data["predictions"]]
    assert all(p["half"] == "1" and p["gameTime"].startswith("1 - ") for p in data["predictions"])

    cues = parse_srt((captioned / "1_224p.srt").read_text(encoding="utf-8"))
    assert [c[0] for c in cues] == list(range(1, len(comments) + 1))
    starts = [c[1] for c in cues]
    assert starts == sorted(starts) and all(start < end for _, start, end, _ in cues)
    # an empty caption (a barely trained model may say nothing) is shown as "..." (a blank line would end the cue)
    assert sorted(c[3] for c in cues) == sorted(" ".join(t.split()) or "..." for t in comments)

    page = (captioned / "1_224p.html").read_text(encoding="utf-8")
    assert '<video controls preload="metadata" src="1_224p.mkv">' in page
    assert '<svg class="confidence"' in page   # the spotter's confidence of every second
    assert all(html.escape(text) in page for text in comments)
    truth = load_labels(captioned / "Labels-caption.json").half(1)
    assert truth and all(html.escape(a.anonymized) in page for a in truth)
    assert not re.search(r"https?:", page) and "<link" not in page
    assert not list(captioned.glob(".star-caption-*"))   # the temporary caches are gone


def test_the_second_half_joins_the_first_in_the_games_predictions(captioned, checkpoint):
    first = json.loads((captioned / "results_dense_captioning.json").read_text())["predictions"]
    assert main(["caption", str(captioned / "2_224p.mkv"), "--checkpoint", str(checkpoint), "--threads", "1",
                 "--positions-backend", "none"]) == 0
    halves, _ = load_predictions(captioned / "results_dense_captioning.json")
    assert len(halves[1]) == len(first) and len(halves[2]) >= 1
    assert parse_srt((captioned / "2_224p.srt").read_text()) and (captioned / "2_224p.html").is_file()


def test_html_escapes_captions_and_points_at_the_video_relatively(tmp_path):
    video = tmp_path / "videos" / "my game #1.mkv"
    captions = [{"seconds": 12, "label": "goal", "comment": "<script>alert(1)</script> & [PLAYER] scores"}]
    write_page(tmp_path / "pages" / "page.html", "game", [HalfView(2, 60, captions)], {2: video})
    page = (tmp_path / "pages" / "page.html").read_text()
    assert 'src="../videos/my%20game%20%231.mkv"' in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; [PLAYER]" in page
    assert "Ground truth" not in page   # no labels, no column


def test_subtitles_are_numbered_in_time_order_and_end_before_the_next_caption():
    text = srt_text([{"seconds": 3725, "comment": "late"}, {"seconds": 1, "comment": "two\nlines"},
                     {"seconds": 3, "comment": "soon after"}])
    assert parse_srt(text) == [(1, 1.0, 3.0, "two lines"), (2, 3.0, 8.0, "soon after"),
                               (3, 3725.0, 3730.0, "late")]


def test_the_half_comes_from_the_option_or_the_file_name(tmp_path):
    assert half_of(tmp_path / "2_720p.mkv", None) == 2 and half_of(tmp_path / "1_224p.mkv", None) == 1
    assert half_of(tmp_path / "match.mp4", None) == 1 and half_of(tmp_path / "1_224p.mkv", 2) == 2


def test_a_missing_checkpoint_file_is_named_with_where_it_was_looked_for(checkpoint, test_game, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(checkpoint, partial)
    (partial / "spotting/model.safetensors").unlink()
    assert main(["caption", str(test_game / "1_224p.mkv"), "--checkpoint", str(partial),
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "missing spotting/model.safetensors" in err and str(partial.resolve()) in err and "star export" in err


def test_a_corrupt_video_gives_the_decoders_error_naming_the_file(checkpoint, tmp_path, capsys):
    video = tmp_path / "1_224p.mkv"
    video.write_bytes(b"\x1aE\xdf\xa3 not a matroska file" * 100)
    assert main(["caption", str(video), "--checkpoint", str(checkpoint), "--threads", "1"]) == 1
    err = capsys.readouterr().err
    assert str(video) in err and "video" in err
    assert not (tmp_path / "results_dense_captioning.json").exists() and not list(tmp_path.glob(".star-caption-*"))


@pytest.mark.parametrize("name", ["encoder/model.safetensors", "spotting/model.safetensors",
                                  "captioning/model.safetensors"])
def test_a_checkpoint_with_a_planted_pickle_is_refused_before_it_runs(checkpoint, test_game, tmp_path, capsys, name):
    from tests.test_trust import plant

    marker = tmp_path / "MARKER"
    planted = tmp_path / "planted"
    shutil.copytree(checkpoint, planted)
    plant(planted / name, marker, "torch" if "spotting" in name else "pickle")
    assert main(["caption", str(test_game / "1_224p.mkv"), "--checkpoint", str(planted),
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert name in err and "not a safetensors file" in err and not marker.exists()
    assert not (tmp_path / "out").exists()   # refused before any work


def test_a_checkpoint_in_the_old_pickled_layout_is_refused_unread(test_game, tmp_path, capsys):
    from tests.test_trust import plant

    marker, old = tmp_path / "MARKER", tmp_path / "old"
    for name in ("encoder.pdparams", "spotting.pt", "captioning.pt"):
        plant(old / name, marker, "pickle" if name.endswith("pdparams") else "torch")
    (old / "config.yaml").write_text("decode: {fps: 1}\n")
    assert main(["caption", str(test_game / "1_224p.mkv"), "--checkpoint", str(old), "--out", str(tmp_path)]) == 1
    assert "old pickled layout" in capsys.readouterr().err and not marker.exists()


def test_another_games_predictions_are_never_overwritten(checkpoint, test_game, tmp_path, capsys):
    out = tmp_path / "shared"
    out.mkdir()
    other = {"UrlLocal": "england_epl/2015-2016/another game", "predictions": [
        {"gameTime": "1 - 00:10", "label": "comments", "comment": "theirs", "half": "1", "confidence": "1"}]}
    (out / "results_dense_captioning.json").write_text(json.dumps(other))
    before = (out / "results_dense_captioning.json").read_bytes()
    assert main(["caption", str(test_game / "1_224p.mkv"), "--checkpoint", str(checkpoint), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "another game" in err and "--out" in err and err.count("\n") == 1
    assert (out / "results_dense_captioning.json").read_bytes() == before and len(list(out.iterdir())) == 1


def test_a_malformed_predictions_file_or_config_is_refused_before_the_work(checkpoint, test_game, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    game = "/".join(test_game.resolve().parts[-3:])
    (out / "results_dense_captioning.json").write_text(json.dumps(
        {"UrlLocal": game, "predictions": [{"gameTime": "3 - 99:99", "comment": "x"}]}))
    video = str(test_game / "1_224p.mkv")
    assert main(["caption", video, "--checkpoint", str(checkpoint), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "prediction 0 is malformed" in err and "gameTime" in err and err.count("\n") == 1
    assert main(["caption", video, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o2"),
                 "--config", '{"decode": {"fps": 1'] ) == 1
    err = capsys.readouterr().err
    assert "malformed" in err and err.count("\n") == 1 and not (tmp_path / "o2").exists()


def test_the_model_card_states_data_config_hash_and_metrics(tmp_path):
    from star.checkpoint import model_card

    metrics = tmp_path / "spots@30.json"
    metrics.write_text(json.dumps({"metrics": {"METEOR": 0.21, "F1": 0.5}, "counts": {"games": 1}}))
    training = {"best_valid_loss": 1.5, "best_step": 40, "steps": 60}
    meta = {"captioning": {"training": training, "fps": 1, "feature_dim": 192,
                           "provenance": {"inputs": ["results/features/pptimesformer/g1/1.h5",
                                                     "results/features/pptimesformer/g2/1.h5"]}},
            "spotting": {"training": training}}
    card = model_card({"model": {"preset": "tiny"}}, meta, "star", "default", "pptimesformer", metrics, "abc123")
    assert "`abc123`" in card and "2 games" in card and "METEOR 0.21" in card and "F1 0.5" in card
    assert "best valid loss 1.5000 at step 40 of 60" in card
