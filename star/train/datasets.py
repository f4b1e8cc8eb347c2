"""Datasets over the HDF5 caches: spotting samples (every second of a half and its class) and captioning samples
(annotations, or given anchors), read lazily and collated into a `Batch`.

A sample is a window of `window` feature samples centred on its anchor (`anchor - window // 2` onwards; off the
half it is zero and masked), the half's global features (every `global_stride`-th sample), and the player
positions at the window's times: feature sample i stands for time i / fps and takes the positions sample nearest
that time, so caches at different rates, or a sample or two apart in length, line up. Missing, uncalibrated and
non-finite player slots are masked.

Caches are opened on first use in each process (DataLoader workers open their own). What depends only on the half
is computed once per half and shared by all its samples: its standardised global features (every
`global_stride`-th sample, float32 or float16) and its positions live in a per-process store (an LRU of
`cache_mb`), so memory stays bounded whatever the dataset's size. A sample carries a reference to its half's
global features, never a copy; `Collate` puts each distinct half of a batch in the batch once (`global_index` maps
samples to them), and the models run their global stage once per distinct half. Windows are sliced from the
standardised half when it is in the store at full rate in float32 (the same values as standardising the window),
else read from the file.

`HalfGroups` orders a training epoch so that each batch draws its samples from a few halves (`halves_per_batch`),
with the halves visited in blocks that fit the store; see its docstring for why this keeps training sound.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from star.data.cache import open_cache
from star.data.games import Game
from star.data.soccernet import Annotation, load_labels
from star.errors import InputError
from star.features.finetune import sample_labels
from star.models.context import filter_memory
from star.train.batch import Batch


@dataclass(frozen=True)
class Half:
    """One game half: where its caches are, its annotations, and its features' length, rate and dimension."""
    game: Game
    half: int
    features: Path
    positions: Path | None
    annotations: tuple[Annotation, ...]
    length: int = 0       # feature samples
    fps: float = 1.0      # feature rate
    dim: int = 0          # feature dimension


def feature_attrs(path: Path) -> tuple[int, float, int]:
    """(length, fps, dim) of a features cache."""
    with open_cache(path, "features") as h5:
        return len(h5["features"]), float(h5.attrs["fps"]), int(h5.attrs["dim"])


def load_halves(games: Sequence[Game], halves: Sequence[int], features_dir: str | Path,
                positions_dir: str | Path | None, labels_root: str | Path, labels_file: str) -> list[Half]:
    """Every half of `games`: its caches (`<dir>/<game id>/<half>.h5`), annotations and feature attributes.

    All halves must share one feature rate and dimension (an InputError names the odd file).
    """
    out = []
    for game in games:
        labels = load_labels(Path(labels_root) / game.path / labels_file)
        for h in halves:
            features = Path(features_dir) / game.id / f"{h}.h5"
            positions = Path(positions_dir) / game.id / f"{h}.h5" if positions_dir else None
            if positions is not None and not positions.is_file():
                raise InputError(f"{positions}: positions cache does not exist")
            length, fps, dim = feature_attrs(features)
            out.append(Half(game, h, features, positions, tuple(labels.half(h)), length, fps, dim))
    if out:
        first = out[0]
        for half in out:
            if (half.fps, half.dim) != (first.fps, first.dim):
                raise InputError(f"{half.features}: {half.dim}-d features at {half.fps:g} fps, but "
                                 f"{first.features} holds {first.dim}-d at {first.fps:g} fps")
    return out


def nbytes(value) -> int:
    return sum(nbytes(a) for a in value) if isinstance(value, tuple) else 0 if value is None else value.nbytes


class LRU(OrderedDict):
    """A dict of arrays (or tuples of arrays and None) that keeps the most recently used ones within `max_bytes`."""

    def __init__(self, max_bytes: int):
        super().__init__()
        self.max_bytes, self.bytes = max_bytes, 0

    def get_or(self, key, make: Callable):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        self.bytes += nbytes(value)
        while self.bytes > self.max_bytes and len(self) > 1:
            self.bytes -= nbytes(self.popitem(last=False)[1])
        return value


class CacheReader:
    """Windows, global features and positions of halves, read lazily from their caches.

    Whole-half arrays (standardised global features, positions) are kept in an LRU of `cache_mb` MiB per process;
    at most `max_open` files stay open. `global_dtype` float16 halves the store's and the batches' global features
    (measured effect on the loss: bench/README.md).
    """

    def __init__(self, cache_mb: float = 1024, global_stride: int = 1, max_open: int = 64,
                 global_dtype: str = "float32"):
        self.cache_bytes, self.global_stride, self.max_open = int(cache_mb * 2**20), global_stride, max_open
        self.global_dtype = np.dtype(global_dtype)
        self._pid = None
        self._next: dict[Path, list[Path]] = {}

    def plan(self, paths: Sequence[Path], ahead: int = 2) -> None:
        """The order in which halves will be read (a training epoch's, from its batches): when a half is read, the
        kernel starts reading the next `ahead` ones of the plan (posix_fadvise WILLNEED), so their disk reads
        overlap this half's computation. Only this process's reads are planned (DataLoader workers overlap reads
        by themselves)."""
        paths = list(dict.fromkeys(paths))
        self._next = {p: paths[i + 1:i + 1 + ahead] for i, p in enumerate(paths)}

    def _read_ahead(self, path: Path) -> None:
        for upcoming in self._next.get(path, ()):
            if hasattr(os, "posix_fadvise"):
                fd = os.open(upcoming, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
                finally:
                    os.close(fd)

    def _reset_if_forked(self) -> None:
        # h5py handles must not cross a fork: each DataLoader worker opens its own
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._files: OrderedDict = OrderedDict()
            self._arrays = LRU(self.cache_bytes)

    def _open(self, path: Path, kind: str):
        self._reset_if_forked()
        if path in self._files:
            self._files.move_to_end(path)
            return self._files[path]
        h5 = self._files[path] = open_cache(path, kind)
        if len(self._files) > self.max_open:
            self._files.popitem(last=False)[1].close()
        return h5

    def _global_key(self, half: Half, inputs: Inputs) -> tuple:
        return half.features, self.global_stride, self.global_dtype.str, inputs.norm_key(), inputs.select

    def window(self, half: Half, anchor: int, size: int, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
        """([size, D] float32 standardised, [size] bool) centred on `anchor`; with blur K (inputs.blur), sample i
        shows sample K * (i // K). Rows off the half are zero."""
        index = np.arange(anchor - size // 2, anchor - size // 2 + size)
        mask = (index >= 0) & (index < half.length)
        source = (index // inputs.blur) * inputs.blur
        out = np.zeros((size, half.dim), np.float32)
        if not mask.any():
            return out, mask
        self._reset_if_forked()
        rows, _ = self._arrays.get(self._global_key(half, inputs), (None, None))
        if rows is not None and self.global_stride == 1 and rows.dtype == np.float32 and len(rows) == half.length:
            out[mask] = rows[source[mask]]  # the whole half (every frame kept), already standardised
            return out, mask
        lo, hi = source[mask].min(), source[mask].max() + 1
        out[mask] = self._open(half.features, "features")["features"][lo:hi][source[mask] - lo]
        if inputs.mean is not None:
            out[mask] -= inputs.mean
            out[mask] /= inputs.std
        return out, mask

    def global_features(self, half: Half, inputs: Inputs) -> tuple[tuple, np.ndarray, np.ndarray | None]:
        """(store key, standardised features [G, D], their sample indices [G] or None): every `global_stride`-th
        sample of the half (times None), or only the frames Filter/Memory keeps of them (`inputs.select`).
        Computed once per half and process while it stays in the store; callers must not write to it."""
        key = self._global_key(half, inputs)

        def read():
            self._read_ahead(half.features)
            h5 = self._open(half.features, "features")
            rows = h5["features"][:: self.global_stride] if self.global_stride > 1 else h5["features"][:]
            rows = rows.astype(np.float32, copy=False)
            if inputs.mean is not None:  # in place: no whole-half temporaries
                rows -= inputs.mean
                rows /= inputs.std
            times = None
            if inputs.select is not None:  # a function of the half's features alone: once per half
                keep = filter_memory(torch.from_numpy(rows)[None], torch.ones(1, len(rows), dtype=torch.bool),
                                     *inputs.select)[0].numpy()
                times = np.flatnonzero(keep) * self.global_stride
                if not keep.all():  # no copy when Memory keeps every frame
                    rows = rows[keep]
            return rows.astype(self.global_dtype, copy=False), times

        self._reset_if_forked()
        rows, times = self._arrays.get_or(key, read)
        return key, rows, times

    def _half_positions(self, path: Path) -> tuple[np.ndarray, np.ndarray, float]:
        """A positions cache as (xy [N, P, 2] with masked slots zeroed, usable slots [N, P], fps)."""
        h5 = self._open(path, "positions")

        def read():
            xy, mask = h5["xy"][:], h5["mask"][:] & h5["calibrated"][:][:, None]
            mask &= np.isfinite(xy).all(axis=-1)
            return np.where(mask[..., None], xy, 0.0).astype(np.float32), mask, np.array(float(h5.attrs["fps"]))

        xy, mask, fps = self._arrays.get_or((path, "positions"), read)
        return xy, mask, float(fps)

    def positions(self, half: Half, anchor: int, size: int, players: int) -> tuple[np.ndarray, np.ndarray]:
        """([size, P, 2] metres, [size, P] bool) at the times of the window's samples (nearest positions sample)."""
        out_xy = np.zeros((size, players, 2), np.float32)
        out_mask = np.zeros((size, players), bool)
        if half.positions is None:
            return out_xy, out_mask
        xy, mask, fps = self._half_positions(half.positions)
        times = np.arange(anchor - size // 2, anchor - size // 2 + size) / half.fps
        index = np.round(times * fps).astype(np.int64)
        inside = (index >= 0) & (index < len(xy))
        k = min(xy.shape[1], players)
        out_xy[inside, :k] = xy[index[inside], :k]
        out_mask[inside, :k] = mask[index[inside], :k]
        return out_xy, out_mask


@dataclass
class Inputs:
    """What a model reads: window lengths and which optional inputs to load (the others come fully masked)."""
    window: int                 # local samples
    with_global: bool = True
    with_positions: bool = False
    players: int = 32
    blur: int = 1               # Table 3's feature blurring K (1: none)
    mean: np.ndarray | None = None  # [D] per-channel standardisation of local and global features (None: raw)
    std: np.ndarray | None = None
    select: tuple[float, float] | None = None  # STaR's PCC: keep only Filter_alpha / Memory_tau's global frames

    def norm_key(self) -> str | None:
        """A digest of the standardisation: stored halves are keyed by it."""
        if self.mean is None:
            return None
        return hashlib.sha256(np.asarray(self.mean, np.float32).tobytes()
                              + np.asarray(self.std, np.float32).tobytes()).hexdigest()[:16]


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
        xy, xy_mask = (self.reader.positions(half, anchor, inputs.window, inputs.players) if inputs.with_positions
                       else (np.zeros((inputs.window, 1, 2), np.float32), np.zeros((inputs.window, 1), bool)))
        return {"local": local, "local_mask": local_mask, "global": global_, "global_key": key, "global_times": times,
                "positions": xy, "positions_mask": xy_mask, "anchor": anchor, "label": int(self.labels[i]),
                "caption": self.captions[i] if self.captions else None}


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
        if self.tokenizer is not None and samples[0]["caption"] is not None:
            batch.tokens, batch.token_mask = self.tokenizer.encode_batch([s["caption"] for s in samples],
                                                                         self.max_tokens)
        return batch
