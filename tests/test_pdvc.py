"""PDVC and the end-to-end ("dense") plumbing: deformable attention against a per-point transcription, Hungarian
matching on a hand-made clip, a tiny model overfitting two clips, the paper preset, clips and merging, and
`star captioning-train` / `captioning-infer` for a dense method on the miniature dataset (no spots)."""

import json
import math

import numpy as np
import pytest
import torch

from star.cli import main
from star.data.predictions import load_predictions
from star import registry
from star.models import model_config
from star.models.deformable import DeformableAttention, deformable_sample
from star.models.dense import Event, clip_starts, merge_events
from star.models.pdvc import PDVC, PDVCConfig
from star.models.set_loss import MatchCosts, generalized_iou, hungarian_match
from star.models.vocab import WordVocab
from star.model_file import load_model
from star.train.dense import DenseCollate
from tests.caches import CAPTIONS, EVENTS, write_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def naive_sample(values, locations, weights):
    """Per query, head, level and point: linear interpolation at x * t - 0.5 (zero off the level), weighted."""
    b, q, h, levels, p = locations.shape
    d = values[0].shape[2]
    out = torch.zeros(b, q, h, d, dtype=torch.float64)
    for i in range(b):
        for j in range(q):
            for k in range(h):
                for lv in range(levels):
                    t = values[lv].shape[-1]
                    for m in range(p):
                        x = float(locations[i, j, k, lv, m]) * t - 0.5
                        lo = math.floor(x)
                        for index, w in ((lo, 1 - (x - lo)), (lo + 1, x - lo)):
                            if 0 <= index < t:
                                out[i, j, k] += weights[i, j, k, lv, m] * w * values[lv][i, k, :, index].double()
    return out.reshape(b, q, h * d)


def test_deformable_sampling_equals_per_point_interpolation():
    torch.manual_seed(0)
    values = [torch.randn(2, 3, 4, t) for t in (9, 5)]          # [b, h, d, t] on two levels
    locations = torch.rand(2, 6, 3, 2, 4) * 1.4 - 0.2           # some points off the levels
    weights = torch.rand(2, 6, 3, 2, 4)
    fast = deformable_sample(values, locations, weights)
    assert torch.allclose(fast.double(), naive_sample(values, locations, weights), atol=1e-5)


def test_deformable_attention_ignores_padding():
    torch.manual_seed(0)
    attn = DeformableAttention(8, 2, 1, 3)
    torch.nn.init.normal_(attn.offsets.weight, std=2.0)
    source = torch.randn(1, 10, 8)
    valid = torch.arange(10)[None] < 6
    query, reference = torch.randn(1, 4, 8), torch.rand(1, 4, 1)
    changed = source.clone()
    changed[:, 6:] = 100.0   # padding's values must not reach any query
    assert torch.allclose(attn(query, reference, source, [10], valid), attn(query, reference, changed, [10], valid))


def test_hungarian_matching_pairs_nearest_segments():
    segments = torch.tensor([[0.2, 0.1], [0.8, 0.1], [0.5, 0.1]])
    targets = torch.tensor([[0.75, 0.1], [0.25, 0.1]])
    rows, cols = hungarian_match(torch.zeros(3), segments, targets, MatchCosts())
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == {0: 1, 1: 0}
    # a confident query wins a target it only roughly covers over an unsure one on it, when classification weighs
    logits = torch.tensor([6.0, -6.0, -6.0])
    rows, cols = hungarian_match(logits, segments, targets[1:], MatchCosts(classification=10.0, giou=1.0))
    assert rows.tolist() == [0]
    empty = hungarian_match(torch.zeros(3), segments, torch.zeros(0, 2), MatchCosts())
    assert [len(x) for x in empty] == [0, 0]
    assert torch.allclose(generalized_iou(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.0], [2.0, 3.0]])),
                          torch.tensor([[1.0, -1 / 3]]))


def clips_and_vocab():
    rng = np.random.default_rng(0)
    vocab = WordVocab.build(list(CAPTIONS.values()), 1)
    samples = []
    for centres, labels in (([10.0, 40.0], ["corner", "whistle"]), ([25.0], ["y-card"])):
        x = rng.normal(size=(60, 16)).astype(np.float32) * 0.1
        for k, c in enumerate(centres):
            x[int(c) - 2:int(c) + 3, 1 + k] += 3.0   # each event shows in the features around it
        samples.append({"features": x, "mask": np.ones(60, bool), "centre": np.array(centres, np.float32),
                        "label": np.array([["corner", "y-card", "whistle"].index(la) for la in labels]),
                        "captions": [CAPTIONS[la] for la in labels], "half_samples": 5.0})
    return vocab, samples


def test_a_tiny_pdvc_overfits_two_clips():
    torch.manual_seed(0)
    vocab, samples = clips_and_vocab()
    batch = DenseCollate(vocab, 30)(samples)
    cfg = model_config("pdvc", "tiny", {"dropout": 0.0, "caption_dropout": 0.0})
    model = PDVC(cfg, 16, vocab)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = float(model(batch).detach())
    for _ in range(150):
        optimizer.zero_grad()
        loss = model(batch)
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < first / 5
    for sample in samples:
        events = model.predict(torch.from_numpy(sample["features"]), fps=1.0, max_tokens=30)
        assert len(events) == len(sample["centre"])   # the counter
        assert sorted(e.centre_s for e in events) == pytest.approx(sorted(sample["centre"]), abs=3.0)
        assert {e.caption for e in events} == set(sample["captions"])


def test_the_paper_preset_builds_and_takes_a_step_at_batch_one():
    torch.manual_seed(0)
    vocab, samples = clips_and_vocab()
    cfg = model_config("pdvc", "paper")
    assert (cfg.width, cfg.levels, cfg.queries, cfg.frames, cfg.enc_layers, cfg.dec_layers) == (512, 4, 10, 100, 2, 2)
    model = PDVC(cfg, 16, vocab)
    batch = DenseCollate(vocab, 30)(samples[:1])
    loss = model(batch)
    loss.backward()
    assert torch.isfinite(loss) and model.pyramid.convs[0].weight.grad is not None
    events = model.predict(batch.features[0], fps=1.0, max_tokens=5)
    assert 1 <= len(events) <= cfg.max_events and all(0 <= e.confidence <= 1 for e in events)


def test_clips_cover_the_half_and_merging_keeps_the_most_confident():
    assert clip_starts(300, 60, 30) == [0, 30, 60, 90, 120, 150, 180, 210, 240]
    assert clip_starts(301, 60, 30)[-1] == 270 and clip_starts(20, 60, 30) == [0]
    events = [Event(10.2, 5, 15, "a", 0.9), Event(12.0, 7, 17, "b", 0.95), Event(40.0, 35, 45, "c", 0.2),
              Event(299.5, 295, 305, "d", 0.99), Event(-1.0, -6, 4, "e", 0.99)]
    kept = merge_events(events, window_s=10, length_s=300)
    assert [e.caption for e in kept] == ["b", "c", "d"]   # a within 5 s of b; e before the half
    assert Event(1.0, 0, 2, "x", 0.5).shifted(30).centre_s == 31.0


FAST = {"steps": 6, "batch_size": 4, "eval_every": 3, "warmup_steps": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny PDVC trained for a few steps on the miniature dataset through `star captioning-train`."""
    store = write_store(tmp_path_factory.mktemp("store"))
    cfg = json.dumps({"captioning": {"dense": {"train": FAST}, "train": {"checkpoint_every": 3}, "max_tokens": 12},
                      "model": {"preset": "tiny"}})
    out = store["root"] / "models"
    assert main(["captioning-train", "--method", "pdvc", "--manifest", str(store["manifest"]),
                 "--labels-root", str(store["labels_root"]), "--features", str(store["features"]), "--config", cfg,
                 "--out", str(out / "model.safetensors"), "--report", str(out / "train.json")]) == 0
    return {**store, "cfg": cfg, "model": out / "model.safetensors", "out": out}


def test_dense_training_writes_a_model_that_loads_back(trained):
    report = json.loads((trained["out"] / "train.json").read_text())
    assert report["steps"] == 6 and report["clip"] == 60 and report["train_samples"] == 2   # 60-s halves
    assert not list(trained["out"].glob("*.ckpt")) and (trained["out"] / "train_log.csv").is_file()
    model, content = load_model(trained["model"], "captioning")
    assert registry.method(content["method"]).kind == "dense" and isinstance(model, PDVC)
    again, _ = load_model(trained["model"], "captioning")
    features = torch.randn(60, 16)
    assert [e.caption for e in model.predict(features)] == [e.caption for e in again.predict(features)]
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name


def test_dense_inference_writes_official_predictions_for_every_half(trained, tmp_path):
    test = trained["games"][2]
    features = [str(trained["features"] / test.id / f"{h}.h5") for h in (1, 2)]
    out = tmp_path / "pred" / "results_dense_captioning.json"
    assert main(["captioning-infer", "--model", str(trained["model"]), "--game-path", test.path,
                 "--features", *features, "--out", str(out), "--config", trained["cfg"]]) == 0
    predictions, outside = load_predictions(out)
    assert not outside and all(predictions[h] for h in (1, 2))
    assert all(0 <= c.seconds < 60 for h in (1, 2) for c in predictions[h])
    assert main(["captioning-infer", "--model", str(trained["model"]), "--game-path", test.path,
                 "--features", *features, "--spots", *features, "--out", str(out), "--config", trained["cfg"]]) == 1


def test_a_spotter_is_not_built_for_a_dense_method():
    from star.models import build_spotter

    with pytest.raises(ValueError, match="no separate spotter"):
        build_spotter("pdvc", PDVCConfig.tiny(), 16, 14)
    assert registry.method("star").kind == "two_stage" and len(EVENTS) == 3


@pytest.mark.slow
def test_pdvc_plans_through_the_workflow_without_a_spotter(tmp_path):
    """A dry run of Tables 1 and 4 with SDVC and PDVC: PDVC trains one model and captions the test game from its own
    events (no spotting job, no spots read), gives a Table 1 row and no Table 4 row; its gt anchors are refused."""
    import yaml

    from tests.conftest import TINY, snakemake
    from tests.test_workflow import planned_jobs

    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "methods": ["pdvc"]}))
    proc = snakemake(tmp_path, "-n", "-p", "results/table1.csv")
    jobs = planned_jobs(proc)
    assert "spotting_train" not in jobs and "spotting_infer" not in jobs and "plot_spotting" not in jobs
    assert {k: jobs[k] for k in ("captioning_train", "captioning_infer", "evaluate_captions")} == {
        "captioning_train": 1, "captioning_infer": 1, "evaluate_captions": 1}
    assert "--spots" not in proc.stdout.split("star captioning-infer", 1)[1].split("\n", 1)[0]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "methods": ["sdvc", "pdvc"]}))
    table4 = planned_jobs(snakemake(tmp_path, "-n", "results/table4.csv"))
    assert (table4["captioning_train"], table4["evaluate_captions"], table4["evaluate_captioning_subtask"]) == (1, 1, 1)
    refused = snakemake(tmp_path, "-n", "results/metrics/pdvc/pptimesformer/default/gt@5.json", check=False)
    assert refused.returncode != 0 and "ground-truth anchors" in refused.stdout + refused.stderr


def test_an_interrupted_dense_run_resumes_to_the_uninterrupted_weights(tmp_path):
    """Clips of the miniature halves through star.train.loop.fit: killed after step 3 (checkpoint at 2), resumed,
    the weights equal an uninterrupted run's (dropout on: the RNG states are restored too)."""
    from star.data.games import read_manifest
    from star.data.halves import Inputs, load_halves
    from star.train.dense import ClipDataset, dense_loss
    from star.train.loop import fit, seed_everything

    store = write_store(tmp_path / "store")
    vocab = WordVocab.build(list(CAPTIONS.values()), 1)
    cfg = {"steps": 4, "batch_size": 4, "lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 1, "grad_clip": 1.0,
           "eval_every": 2, "patience": 100, "checkpoint_every": 2, "max_valid_samples": 8, "workers": 0}

    def sets(split):
        games = [g for g in read_manifest(store["manifest"]) if g.split == split]
        halves = load_halves(games, [1, 2], store["features"], None, store["labels_root"], "Labels-caption.json")
        return ClipDataset(halves, Inputs(window=30, with_global=False), 30, 10, 10.0, registry.classes("synthetic"))

    def run(checkpoint, after_step=None):
        seed_everything(0)
        model = PDVC(PDVCConfig.tiny(), 16, vocab)
        fit(model, dense_loss, sets("train"), sets("valid"), DenseCollate(vocab, 20), cfg, seed=0,
            checkpoint=checkpoint, fingerprint="a", device=torch.device("cpu"), after_step=after_step)
        return model

    reference = run(tmp_path / "ref.ckpt")

    def kill_at_3(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run.ckpt", kill_at_3)
    resumed = run(tmp_path / "run.ckpt")
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_batch_without_events_trains_every_parameter_it_can():
    """Clips without events: the set loss pushes every query to "no event", and every parameter gets a gradient
    (zero for the caption and label heads), as DistributedDataParallel requires."""
    torch.manual_seed(0)
    vocab, samples = clips_and_vocab()
    empty = [{**samples[0], "centre": np.zeros(0, np.float32), "label": np.zeros(0, np.int64), "captions": []}]
    model = PDVC(PDVCConfig.tiny(), 16, vocab)
    model(DenseCollate(vocab, 30)(empty)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    assert model.captioner.to_words.weight.grad.abs().sum() == 0


def test_export_refuses_an_end_to_end_method_in_one_line(tmp_path, capsys):
    """`star caption` runs a spotter and a captioner: exporting PDVC says so instead of asking for a spotter."""
    assert main(["export", str(tmp_path / "ckpt"), "--from-results", str(tmp_path / "results"),
                 "--method", "pdvc"]) == 1
    err = capsys.readouterr().err
    assert "end-to-end method" in err and err.count("\n") == 1 and not (tmp_path / "ckpt").exists()
