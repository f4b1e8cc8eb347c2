"""Training: lazy datasets (windows, masks, blurring, positions by time, balancing), collation into a Batch, the
loop's seeding, checkpoint resume after a kill, early stopping, data sharding and DDP on CPU, and variants."""

import os
import socket
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from star.data.cache import BALL_ROLE, write_cache
from star.data.datasets import CaptioningDataset, Collate, HalfGroups, SpottingDataset
from star.data.halves import SMALL_HALF, CacheReader, Inputs, load_halves
from star.data.games import read_manifest
from star.data.soccernet import CAPTION_LABELS
from star.errors import InputError
from star.models.vocab import WordVocab
from star.train.common import method_config, read_config
from star.variants import parse_variant, spotting_variant
from star.train.loop import (Dist, fit, seed_everything, setup_distributed, spotting_loss, step_batches,
                             validation_loss)
from tests.caches import CAPTIONS, EVENTS, features_of, write_store

TRAIN = {"steps": 12, "batch_size": 8, "lr": 0.01, "weight_decay": 0.0, "warmup_steps": 2, "grad_clip": 1.0,
         "eval_every": 4, "patience": 100, "checkpoint_every": 4, "max_valid_samples": 50, "workers": 0}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("store"), positions_fps=2.0)


def halves(store, split="train"):
    games = [g for g in read_manifest(store["manifest"]) if g.split == split]
    return load_halves(games, [1, 2], store["features"], store["positions"], store["labels_root"],
                       "Labels-caption.json")


class ToySpotter(nn.Module):
    """Mean of the window -> dropout -> logits: small, with randomness the checkpoint must restore."""

    def __init__(self, dim=16):
        super().__init__()
        self.linear, self.dropout = nn.Linear(dim, 14), nn.Dropout(0.3)

    def forward(self, batch):
        pooled = (batch.local * batch.local_mask[..., None]).sum(1) / batch.local_mask.sum(1, keepdim=True)
        return self.linear(self.dropout(pooled))


# --- datasets and batches ----------------------------------------------------------------------------------------

def test_window_off_the_half_is_masked_and_zero(store):
    half = halves(store)[0]
    dataset = CaptioningDataset([half], Inputs(window=8, with_global=False), anchors=[(0, 2), (0, 58)])
    start, end = dataset[0], dataset[1]
    assert start["local_mask"].tolist() == [False, False] + [True] * 6
    assert start["local"][2:, 0].tolist() == [0, 1, 2, 3, 4, 5] and not start["local"][:2].any()
    assert end["local_mask"].tolist() == [True] * 6 + [False] * 2   # samples 54..59, then off the end
    assert end["local"][:6, 0].tolist() == [54, 55, 56, 57, 58, 59]


def test_blurring_shows_the_first_sample_of_each_run(store):
    half = halves(store)[0]
    sample = CaptioningDataset([half], Inputs(window=10, with_global=False, blur=3), anchors=[(0, 20)])[0]
    # window = samples 15..24; with K = 3 sample i shows 3 * (i // 3)
    assert sample["local"][:, 0].tolist() == [15, 15, 15, 18, 18, 18, 21, 21, 21, 24]


def test_positions_follow_time_at_another_rate_and_masks_hold(store):
    half = halves(store)[0]   # features at 1 fps, positions at 2 fps
    sample = CaptioningDataset([half], Inputs(window=4, with_global=False, with_positions=True, players=6),
                               anchors=[(0, 10)])[0]
    # feature samples 8..11 -> times 8..11 s -> positions rows 16, 18, 20, 22; the store has 4 slots, the last empty
    assert sample["positions"][:, 0, 0].tolist() == [16, 18, 20, 22]
    assert sample["positions"][0, :3, 1].tolist() == [0, 1, 2]
    assert sample["positions_mask"].tolist() == [[True, True, True, False, False, False]] * 4
    off = CaptioningDataset([half], Inputs(window=4, with_global=False, with_positions=True),
                            anchors=[(0, 59)])[0]   # samples 57..60: time 60 s is past the positions' end
    assert off["positions_mask"][:, 0].tolist() == [True, True, True, False]


def test_team_role_and_ball_ride_with_the_positions(store, tmp_path):
    half = halves(store)[0]   # positions at 2 fps: ball x = row % 50, seen where row % 3 > 0; team 0, role 0
    inputs = Inputs(window=4, with_global=False, with_positions=True, position_attributes=True, players=6)
    sample = CaptioningDataset([half], inputs, anchors=[(0, 10)])[0]
    assert sample["positions"].shape == (4, 7, 2)                # 6 player slots, then the ball
    assert sample["positions"][:, 6, 0].tolist() == [16, 0, 20, 22] and sample["positions_mask"][:, 6].tolist() == \
        [True, False, True, True]
    assert sample["positions_role"][0].tolist() == [0] * 6 + [BALL_ROLE]
    assert sample["positions_team"][0].tolist() == [0, 0, 0, 0, -1, -1, -1]   # the store has 4 slots
    batch = Collate()([sample, sample])
    assert batch.positions_role.shape == (2, 4, 7) and batch.positions_team.dtype == torch.long
    # a positions cache written before the ball (format 1) is refused by a model that reads it
    old = tmp_path / "old.h5"
    write_cache(old, "positions", {"xy": np.zeros((4, 2, 2)), "team": np.zeros((4, 2)), "role": np.zeros((4, 2)),
                                   "mask": np.ones((4, 2), bool), "calibrated": np.ones(4, bool),
                                   "jersey": np.zeros((4, 2)), "ball": np.zeros((4, 2)),
                                   "ball_visible": np.zeros(4, bool)},
                {}, game="g", half=1, fps=1.0, backend="test", max_players=2, format=1)
    with pytest.raises(InputError, match="format 1 has no ball"):
        CaptioningDataset([replace(half, positions=old)], inputs, anchors=[(0, 2)])[0]


def test_spotting_labels_and_balanced_epochs(store):
    data = SpottingDataset(halves(store), Inputs(window=6, with_global=False), radius_s=1,
                           negatives_per_positive=2)
    assert len(data) == 2 * 60   # every second of the train game's two halves
    by_second = data.labels[:60]
    expected = {s + d: 1 + CAPTION_LABELS.index(label) for s, label in EVENTS for d in (-1, 0, 1)}
    assert {int(s): int(c) for s, c in enumerate(by_second) if c} == expected
    order = data.epoch_order(np.random.default_rng(0))
    positives = int((data.labels > 0).sum())
    assert len(order) == 3 * positives and (data.labels[order] > 0).sum() == positives
    assert len(set(order.tolist())) == len(order)


def test_collate_pads_global_features_and_tokens(store, tmp_path):
    train = halves(store)
    path = write_cache(tmp_path / "short.h5", "features", {"features": features_of(40, 16, 1)}, {}, game="g",
                       half=1, fps=1.0, dim=16, encoder="test")
    short = replace(train[0], features=path, length=40)   # a shorter half
    dataset = CaptioningDataset([short, train[1]], Inputs(window=6), anchors=None)
    vocab = WordVocab.build(CAPTIONS.values(), 1)
    batch = Collate(vocab, max_tokens=6)([dataset[0], dataset[len(dataset) - 1], dataset[1]])
    assert batch.local.shape == (3, 6, 16) and batch.global_.shape == (2, 60, 16)  # each distinct half once
    assert batch.global_index.tolist() == [0, 1, 0]
    assert batch.global_mask.sum(1).tolist() == [40, 60] and not batch.global_[0, 40:].any()
    assert batch.tokens.shape == (3, 6) and batch.token_mask.all()   # the captions cut to 5 words + <end>
    assert batch.tokens[:, -1].tolist() == [vocab.end_id] * 3
    assert batch.anchor.tolist()[:2] == [EVENTS[0][0], EVENTS[-1][0]]
    sub = batch.select([1, 2])  # a sub-batch keeps the halves and maps its samples to them
    assert sub.global_.shape == (2, 60, 16) and sub.global_index.tolist() == [1, 0]
    one_half = Collate()([dataset[0], dataset[1]])
    assert one_half.global_.shape == (1, 40, 16) and one_half.global_index.tolist() == [0, 0]
    assert dataset.captions[0] == CAPTIONS[EVENTS[0][1]]


def test_standardisation_applies_to_real_rows_only(store):
    half = halves(store)[0]
    mean, std = np.full(16, 1.0, np.float32), np.full(16, 2.0, np.float32)
    sample = CaptioningDataset([half], Inputs(window=4, mean=mean, std=std), anchors=[(0, 1)])[0]
    raw = features_of(60, 16, 1)
    assert np.allclose(sample["local"][1:], (raw[:3] - 1) / 2) and not sample["local"][0].any()
    assert np.allclose(sample["global"], (raw - 1) / 2)


def test_halves_are_standardised_once_and_the_store_stays_within_cache_mb(store):
    train = halves(store)
    mean, std = np.full(16, 1.0, np.float32), np.full(16, 2.0, np.float32)
    half_mb = 60 * 16 * 4 / 2**20
    reader = CacheReader(cache_mb=1.5 * half_mb)  # room for one half's global features
    inputs = Inputs(window=4, mean=mean, std=std)
    dataset = CaptioningDataset(train, inputs, anchors=[(0, 5), (0, 30), (1, 5)], reader=reader)
    first, second = dataset[0], dataset[1]
    assert first["global"] is second["global"]  # one standardised array per half, shared by its samples
    raw = features_of(60, 16, 1)
    # windows sliced from the stored half equal standardising the window itself, bit for bit
    assert np.array_equal(second["local"], ((raw[28:32] - mean) / std).astype(np.float32))
    dataset[2]  # the other half evicts the first
    assert reader._arrays.bytes <= reader.cache_bytes and len(reader._arrays) == 1
    fp16 = CaptioningDataset(train, inputs, anchors=[(0, 5)], reader=CacheReader(global_dtype="float16"))[0]
    assert fp16["global"].dtype == np.float16 and np.allclose(fp16["global"], (raw - 1) / 2, atol=1e-2)
    assert fp16["local"].dtype == np.float32
    # STaR's captioner: Filter/Memory's frames only, with their sample indices, selected once per half
    select = Inputs(window=4, mean=mean, std=std, select=(0.2, -2.0))  # tau < -1: the Memory adds nothing
    selected = CaptioningDataset(train, select, anchors=[(0, 5), (0, 30)], reader=CacheReader())
    sample = selected[0]
    assert sample["global_times"].tolist() == list(range(0, 60, 5))
    assert np.allclose(sample["global"], (raw[::5] - 1) / 2) and np.allclose(selected[1]["local"], second["local"])
    batch = Collate()([sample, selected[1]])
    assert batch.global_.shape == (1, 12, 16) and batch.global_times.tolist() == [list(range(0, 60, 5))]


def test_a_small_half_is_read_once_for_all_its_windows(store):
    """Without global features (or with Filter/Memory's frames only) a window is cut from the whole standardised
    half when the half is at most 1/SMALL_HALF of the store: the same bits as reading the window's rows."""
    train = halves(store)
    mean, std = np.full(16, 1.0, np.float32), np.full(16, 2.0, np.float32)
    inputs = Inputs(window=6, with_global=False, mean=mean, std=std, blur=3)
    anchors = [(0, 2), (0, 30), (0, 58), (1, 7)]
    half_mb = 60 * 16 * 4 / 2**20
    small = CaptioningDataset(train, inputs, anchors=anchors, reader=CacheReader(cache_mb=SMALL_HALF * half_mb))
    read = CaptioningDataset(train, inputs, anchors=anchors, reader=CacheReader(cache_mb=SMALL_HALF * half_mb / 2))
    for i in range(len(anchors)):
        assert np.array_equal(small[i]["local"], read[i]["local"])
        assert np.array_equal(small[i]["local_mask"], read[i]["local_mask"])
    assert len(small.reader._arrays) == 2 and not read.reader._arrays  # the two halves kept; none


def test_a_half_leaving_the_store_leaves_the_page_cache(store, monkeypatch):
    """Its file's pages are dropped (posix_fadvise DONTNEED) when its global features are evicted, so the next half
    is read into pages just freed; halves still in the store keep theirs."""
    from star.data import halves as store_module

    advised = []
    monkeypatch.setattr(store_module, "advise", lambda path, advice: advised.append((path, advice)))
    train = halves(store)
    reader = CacheReader(cache_mb=1.5 * 60 * 16 * 4 / 2**20)  # room for one half's global features
    dataset = CaptioningDataset(train, Inputs(window=4), anchors=[(0, 5), (0, 30), (1, 5)], reader=reader)
    dataset[0], dataset[1]
    assert advised == []
    dataset[2]
    assert advised == [(train[0].features, "POSIX_FADV_DONTNEED")]


def test_batches_grouped_by_half_visit_each_sample_at_most_once(store):
    train = halves(store)
    data = SpottingDataset(train, Inputs(window=6, with_global=False), radius_s=1, negatives_per_positive=2)
    plain = data.epoch_batches(np.random.default_rng(0), 8)
    assert all(len(b) == 8 for b in plain)
    data.groups = HalfGroups(halves_per_batch=1, block_halves=1)
    grouped = data.epoch_batches(np.random.default_rng(0), 8)
    assert grouped and all(len(b) == 8 and len(set(data.half_index[b])) == 1 for b in grouped)
    seen = np.concatenate(grouped)
    assert len(set(seen.tolist())) == len(seen)
    assert set(seen.tolist()) <= set(data.epoch_order(np.random.default_rng(0)).tolist())
    # with blocks of one half, consecutive batches stay on a half until its chunks are used up
    changes = sum(data.half_index[a[0]] != data.half_index[b[0]] for a, b in zip(grouped, grouped[1:], strict=False))
    assert changes == len(set(data.half_index[seen])) - 1
    data.groups = HalfGroups(halves_per_batch=2, block_halves=2)
    two = data.epoch_batches(np.random.default_rng(1), 8)
    assert all(len(b) == 8 for b in two) and any(len(set(data.half_index[b])) == 2 for b in two)



def test_an_epoch_reads_ahead_the_halves_its_batches_visit_next(store, monkeypatch):
    train = halves(store)
    advised = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: advised.append(
        (os.readlink(f"/proc/self/fd/{fd}"), advice)))
    data = SpottingDataset(train, Inputs(window=6), radius_s=1, negatives_per_positive=2)
    data.groups = HalfGroups(halves_per_batch=1, block_halves=1)
    batches = data.epoch_batches(np.random.default_rng(0), 8)
    order = list(dict.fromkeys(data.half_index[np.concatenate(batches)].tolist()))  # halves, first use
    data[int(batches[0][0])]  # reads the first half: the kernel is asked for the next two
    assert advised == [(str(train[h].features.resolve()), os.POSIX_FADV_WILLNEED) for h in order[1:3]]


# --- the loop ------------------------------------------------------------------------------------------------------

def train_toy(store, checkpoint, after_step=None, cfg=TRAIN, fingerprint="a"):
    seed_everything(0)
    model = ToySpotter()
    inputs = Inputs(window=6, with_global=False)
    train = SpottingDataset(halves(store), inputs, 1, 1)
    valid = SpottingDataset(halves(store, "valid"), inputs, 1, 1)
    curve = fit(model, spotting_loss, train, valid, Collate(), cfg, seed=0, checkpoint=checkpoint,
                fingerprint=fingerprint, device=torch.device("cpu"), after_step=after_step)
    return model, curve


def test_resume_after_a_kill_gives_the_uninterrupted_weights(store, tmp_path):
    reference, _ = train_toy(store, tmp_path / "ref.ckpt")

    def kill_at_6(step):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_toy(store, tmp_path / "run.ckpt", after_step=kill_at_6)
    assert torch.load(tmp_path / "run.ckpt", weights_only=False)["state"]["step"] == 4   # last checkpoint
    resumed, curve = train_toy(store, tmp_path / "run.ckpt")   # a fresh process would start here
    assert curve["steps"] == 12
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_checkpoint_of_other_settings_is_not_resumed(store, tmp_path):
    train_toy(store, tmp_path / "x.ckpt", cfg={**TRAIN, "steps": 4})
    fresh, _ = train_toy(store, tmp_path / "fresh.ckpt")
    other, _ = train_toy(store, tmp_path / "x.ckpt", fingerprint="b")   # must ignore the 4-step checkpoint
    assert all(torch.equal(a, other.state_dict()[k]) for k, a in fresh.state_dict().items())


def test_early_stopping_after_patience_evaluations_without_progress(store, tmp_path):
    _, curve = train_toy(store, tmp_path / "e.ckpt", cfg={**TRAIN, "lr": 0.0, "eval_every": 2, "patience": 2})
    assert curve["stopped_early"] and curve["steps"] == 6 and curve["best_step"] == 2   # evaluations at 2, 4, 6


def test_training_ends_with_the_best_validation_weights(store, tmp_path):
    model, curve = train_toy(store, tmp_path / "b.ckpt", cfg={**TRAIN, "steps": 24, "lr": 0.5, "eval_every": 2})
    losses = [c["valid_loss"] for c in curve["curve"]]
    assert curve["best_valid_loss"] == min(losses) and losses.index(min(losses)) < len(losses) - 1
    valid = SpottingDataset(halves(store, "valid"), Inputs(window=6, with_global=False), 1, 1)
    again = validation_loss(model, spotting_loss, valid, Collate(), 8, torch.device("cpu"))
    assert again == pytest.approx(curve["best_valid_loss"], rel=1e-5)


def test_data_order_resumes_and_shards():
    class Data:
        def __len__(self):
            return 10

        def epoch_order(self, rng):
            return rng.permutation(10)

    full = step_batches(Data(), 3, seed=1)
    first = [next(full) for _ in range(7)]   # 3 steps per epoch: crosses two epoch boundaries
    assert next(step_batches(Data(), 3, seed=1, start=5)) == first[5]
    shards = [step_batches(Data(), 2, seed=1, dist=Dist(rank, 2)) for rank in (0, 1)]
    step = [next(s) for s in shards]
    assert len(set(step[0] + step[1])) == 4   # two ranks see disjoint halves of one 4-sample step


def ddp_worker(rank: int, port: int, store: dict, out: str):
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist = setup_distributed()
    seed_everything(0)
    model = ToySpotter()
    inputs = Inputs(window=6, with_global=False)
    data = SpottingDataset(halves(store), inputs, 1, 1)
    fit(model, spotting_loss, data, SpottingDataset(halves(store, "valid"), inputs, 1, 1), Collate(),
        {**TRAIN, "steps": 3}, seed=0, checkpoint=f"{out}/ckpt", fingerprint="d", device=torch.device("cpu"),
        dist=dist)
    torch.save(model.state_dict(), f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_seeding_asks_for_deterministic_kernels_without_importing_the_compiler():
    # a fresh process: the flag torch reads, set without torch.use_deterministic_algorithms' import of
    # torch._inductor (a CPU-second in every training job)
    code = ("import sys, torch; from star.train.loop import seed_everything; seed_everything(0); "
            "print(torch.are_deterministic_algorithms_enabled(), "
            "torch.is_deterministic_algorithms_warn_only_enabled(), 'torch._inductor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "False"]


def test_ddp_on_cpu_keeps_replicas_identical(store, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(ddp_worker, args=(port, store, str(tmp_path)), nprocs=2)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "ckpt").is_file()   # written by rank 0


# --- variants and configs ------------------------------------------------------------------------------------------

def test_variants_parse_and_map_to_spotters():
    assert parse_variant("default") == {}
    assert parse_variant("blur10-noglobal-nopos") == {"blur": 10, "use_global": False, "use_positions": False}
    assert spotting_variant("blur3-nopos") == "nopos" and spotting_variant("blur10") == "default"
    with pytest.raises(InputError, match="unknown switch 'nosss'"):
        parse_variant("nosss")
    cfg = read_config(None)
    star = method_config(cfg, "star", "blur3-nopos")
    assert (star.blur, star.use_positions, star.use_global) == (3, False, True)
    with pytest.raises(InputError, match="ablation of STaR"):
        method_config(cfg, "sdvc", "nopos")
    assert method_config(cfg, "star", "default").sss_inputs == "xy"             # the paper's SSS
    assert method_config(cfg, "star", "teamball").sss_inputs == "xy_team_role_ball"
    rich = read_config('{"model": {"star": {"sss_inputs": "xy_team_role_ball"}}}')
    assert method_config(rich, "star", "default").sss_inputs == "xy_team_role_ball"


def test_halves_of_another_rate_or_dimension_are_named(tmp_path):
    """One check (star.data.cache.check_features) for every pairing: the odd half of a split is named with the
    first half it disagrees with."""
    store = write_store(tmp_path, splits=("train",))
    game = read_manifest(store["manifest"])[0]
    odd = write_cache(store["features"] / game.id / "2.h5", "features", {"features": np.zeros((120, 8), np.float32)},
                      {"stage": "test"}, game=game.id, half=2, fps=2.0, dim=8, encoder="test")
    with pytest.raises(InputError, match=r"2\.h5: 8-d features at 2 fps, but .*1\.h5 holds 16-d features at 1 fps"):
        load_halves([game], [1, 2], store["features"], None, store["labels_root"], "Labels-caption.json")
    assert odd.is_file()
