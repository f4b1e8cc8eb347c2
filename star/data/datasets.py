"""Datasets over the HDF5 caches: spotting samples (every second of a half and its class) and captioning samples
(annotations, or given anchors), read through a `CacheReader` (star.data.halves) and collated into a `Batch`.

A sample is a window of `window` feature samples centred on its anchor (`anchor - window // 2` onwards; off the
half it is zero and masked), the half's global features (every `global_stride`-th sample), and the player
positions at the window's times: feature sample i stands for time i / fps and takes the positions sample nearest
that time, so caches at different rates, or a sample or two apart in length, line up. Missing, uncalibrated and
non-finite player slots are masked.

A sample carries a reference to its half's stored global features, never a copy; `Collate` puts each distinct
half of a batch in the batch once (`global_index` maps samples to them), and the models run their global stage
once per distinct half. `HalfGroups` orders a training epoch so that each batch draws its samples from a few
halves (`halves_per_batch`), with the halves visited in blocks that fit the store; see its docstring for why this
keeps training sound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from star.data.batch import Batch
from star.data.halves import CacheReader, Half, Inputs
from star.data.soccernet import sample_labels


class WindowDataset(torch.utils.data.Dataset):
    """Samples (half index, anchor sample, label, caption) -> dicts of arrays; `collate` makes the Batch."""

    def __init__(self, halves: list[Half], inputs: Inputs, reader: CacheReader | None = None):
        self.halves, self.inputs = halves, inputs
        self.reader = reader or CacheReader()
        self.half_index = np.zeros(0, np.int64)
        self.anchors = np.zeros(0, np.int64)
        self.labels = np.zeros(0, np.int64)
        self.captions: list[str] = []

    def __len__(self) -> int:
        return len(self.anchors)

    groups: HalfGroups | None = None  # how training batches are drawn (None: uniformly)

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        """The sample indices one training epoch visits, shuffled."""
        return rng.permutation(len(self))

    def epoch_batches(self, rng: np.random.Generator, batch_size: int) -> list[np.ndarray]:
        """One epoch's batches: `epoch_order` cut into batches (the rest dropped; a set smaller than a batch is
        one batch), or grouped by half when `groups` is set."""
        order = self.epoch_order(rng)
        batches = self.groups.batches(order, self.half_index, batch_size, rng) if self.groups is not None else []
        if not batches:
            batches = [order[b * batch_size:(b + 1) * batch_size] for b in range(max(1, len(order) // batch_size))]
        if self.inputs.with_global:  # the halves in the order the epoch reads them: read ahead
            self.reader.plan([self.halves[h].features for h in self.half_index[np.concatenate(batches)]])
        return batches

    def __getitem__(self, i: int) -> dict:
        half, anchor, inputs = self.halves[self.half_index[i]], int(self.anchors[i]), self.inputs
        # the global features first: the window is then sliced from the stored half
        key, global_, times = self.reader.global_features(half, inputs) if inputs.with_global else (None,) * 3
        local, local_mask = self.reader.window(half, anchor, inputs.window, inputs)
        team = role = None
        if inputs.with_positions and inputs.position_attributes:
            xy, xy_mask, team, role = self.reader.positions(half, anchor, inputs.window, inputs.players, True)
        elif inputs.with_positions:
            xy, xy_mask = self.reader.positions(half, anchor, inputs.window, inputs.players)
        else:
            xy, xy_mask = np.zeros((inputs.window, 1, 2), np.float32), np.zeros((inputs.window, 1), bool)
        return {"local": local, "local_mask": local_mask, "global": global_, "global_key": key, "global_times": times,
                "positions": xy, "positions_mask": xy_mask, "positions_team": team, "positions_role": role,
                "anchor": anchor, "label": int(self.labels[i]), "caption": self.captions[i] if self.captions else None}


@dataclass(frozen=True)
class HalfGroups:
    """Training batches drawn from `halves_per_batch` halves each, the halves visited in blocks of `block_halves`.

    Why: a half's global stage (and reading and standardising it) is the costly part of a STaR sample, and it is
    shared by all samples of the half in a batch; a batch of B samples from k halves pays k of them, not B.
    How, each epoch: the epoch's samples (`epoch_order`, class balancing included) are split by half, each half's
    into chunks of ceil(B / k) in their shuffled order (a half's last partial chunk sits this epoch out: a few
    samples, different ones each epoch); the halves are shuffled into blocks of `block_halves` (what the
    per-process store holds, so a half is read once per block, not once per batch); within a block the chunks are
    shuffled and every k consecutive ones make a batch. Each kept sample is seen once per epoch, in a random
    order of batches: the gradient stays an unbiased estimate of the epoch's, with more variance the fewer halves
    a batch spans (its samples share a half's context). k = 1 is the cheapest; k >= B, with blocks of every
    half, is close to uniform batches.
    """
    halves_per_batch: int
    block_halves: int

    def batches(self, order: np.ndarray, half_index: np.ndarray, batch_size: int,
                rng: np.random.Generator) -> list[np.ndarray]:
        k = max(1, min(self.halves_per_batch, batch_size))
        per_half = -(-batch_size // k)  # samples of one half in a batch
        halves = half_index[order]
        by_half = np.argsort(halves, kind="stable")  # each half's samples, in epoch order
        starts = np.searchsorted(halves[by_half], np.unique(halves))
        chunks = {}
        for h, part in zip(np.unique(halves), np.split(order[by_half], starts[1:]), strict=True):
            full = len(part) // per_half
            chunks[int(h)] = [part[c * per_half:(c + 1) * per_half] for c in range(full)]
        present = np.array([h for h, c in chunks.items() if c])
        block = max(k, self.block_halves)
        out, shuffled = [], rng.permutation(present)
        for b in range(0, len(shuffled), block):
            pool = [c for h in shuffled[b:b + block] for c in chunks[int(h)]]
            pool = [pool[i] for i in rng.permutation(len(pool))]
            out += [np.concatenate(pool[i:i + k])[:batch_size] for i in range(0, len(pool) - k + 1, k)]
        return out


def block_halves(reader: CacheReader, halves: Sequence[Half]) -> int:
    """How many of `halves`' global features the reader's store holds at once (at least 1)."""
    if not halves:
        return 1
    longest = max(-(-h.length // reader.global_stride) * h.dim for h in halves) * reader.global_dtype.itemsize
    return max(1, reader.cache_bytes // max(1, longest))


class SpottingDataset(WindowDataset):
    """Every whole second of every half, labelled background (0) or 1 + the caption label of an annotation within
    `radius_s`; an epoch takes every event second and `negatives_per_positive` times as many background ones."""

    def __init__(self, halves: list[Half], inputs: Inputs, radius_s: float, negatives_per_positive: float,
                 reader: CacheReader | None = None):
        super().__init__(halves, inputs, reader)
        self.negatives_per_positive = negatives_per_positive
        index, anchors, labels = [], [], []
        for h, half in enumerate(halves):
            seconds = np.arange(int(half.length / half.fps))
            samples = np.round(seconds * half.fps).astype(np.int64)
            index.append(np.full(len(seconds), h))
            anchors.append(samples)
            labels.append(sample_labels(half.annotations, seconds.astype(np.float64), radius_s))
        self.half_index, self.anchors, self.labels = (np.concatenate(a) if a else np.zeros(0, np.int64)
                                                      for a in (index, anchors, labels))

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        positives = np.flatnonzero(self.labels > 0)
        negatives = np.flatnonzero(self.labels == 0)
        keep = min(len(negatives), int(round(self.negatives_per_positive * max(len(positives), 1))))
        return rng.permutation(np.concatenate([positives, rng.choice(negatives, keep, replace=False)]))


class CaptioningDataset(WindowDataset):
    """One sample per annotation (anchor = its second), or per given (half index, second) anchor at inference.

    With `jitter_s` J, each annotation is also a sample at every whole second within J of it (same caption): at
    inference the anchors are spots, a few seconds off the annotations, and the extra views curb overfitting.
    """

    def __init__(self, halves: list[Half], inputs: Inputs, anchors: Sequence[tuple[int, float]] | None = None,
                 reader: CacheReader | None = None, jitter_s: int = 0):
        super().__init__(halves, inputs, reader)
        if anchors is None:
            offsets = range(-jitter_s, jitter_s + 1)
            anchors = [(h, a.seconds + d) for h, half in enumerate(halves) for a in half.annotations for d in offsets]
            self.captions = [a.anonymized for half in halves for a in half.annotations for _ in offsets]
        self.half_index = np.array([h for h, _ in anchors], np.int64)
        self.anchors = np.array([round(s * halves[h].fps) for h, s in anchors], np.int64)
        self.labels = np.zeros(len(anchors), np.int64)


def global_batch(samples: list[dict]) -> tuple[torch.Tensor, ...]:
    """Each distinct half of the batch once: (global features [H, G, D] padded to the longest, mask [H, G],
    sample indices [H, G] of the rows when the dataset selected them (else None), the row of each sample [B]).
    Samples without global features share one fully masked row. A batch of one half shares the stored array (no
    copy): nothing downstream writes to it."""
    keys = list(dict.fromkeys(s["global_key"] for s in samples))  # distinct, in order of first use
    row = {key: i for i, key in enumerate(keys)}
    index = torch.tensor([row[s["global_key"]] for s in samples])
    first = {s["global_key"]: s for s in reversed(samples)}
    dim = samples[0]["local"].shape[-1]
    if keys == [None]:  # no global context: one masked sample
        return torch.zeros(1, 1, dim), torch.zeros(1, 1, dtype=torch.bool), None, index
    arrays = [first[k]["global"] for k in keys]
    lengths = [len(a) for a in arrays]
    mask = torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]
    times = None
    if first[keys[0]]["global_times"] is not None:
        times = torch.zeros(len(keys), max(lengths), dtype=torch.long)
        for i, key in enumerate(keys):
            times[i, : lengths[i]] = torch.from_numpy(first[key]["global_times"])
    if len(keys) == 1:
        return torch.from_numpy(arrays[0])[None], mask, times, index
    out = np.zeros((len(keys), max(lengths), dim), arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return torch.from_numpy(out), mask, times, index


class Collate:
    """A list of samples -> Batch. Global features: each distinct half once (`global_batch`); with a tokenizer,
    captions become tokens (its `encode_batch`: at most max_tokens - 1 tokens, then the end token, padded with its
    pad id)."""

    def __init__(self, tokenizer=None, max_tokens: int = 100):
        self.tokenizer, self.max_tokens = tokenizer, max_tokens

    def __call__(self, samples: list[dict]) -> Batch:
        def stack(key):
            return torch.from_numpy(np.stack([s[key] for s in samples]))

        global_, global_mask, global_times, global_index = global_batch(samples)
        batch = Batch(
            local=stack("local"), local_mask=stack("local_mask"), global_=global_, global_mask=global_mask,
            positions=stack("positions"), positions_mask=stack("positions_mask"),
            anchor=torch.tensor([s["anchor"] for s in samples]), label=torch.tensor([s["label"] for s in samples]),
            global_times=global_times, global_index=global_index)
        if samples[0].get("positions_team") is not None:
            batch.positions_team, batch.positions_role = stack("positions_team"), stack("positions_role")
        if self.tokenizer is not None and samples[0]["caption"] is not None:
            batch.tokens, batch.token_mask = self.tokenizer.encode_batch([s["caption"] for s in samples],
                                                                         self.max_tokens)
        return batch
