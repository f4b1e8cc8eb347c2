"""Datasets over the HDF5 caches: spotting samples (every second of a half and its class) and captioning samples
(annotations, or given anchors), read lazily and collated into a `Batch`.

A sample is a window of `window` feature samples centred on its anchor (`anchor - window // 2` onwards; off the
half it is zero and masked), the half's global features (every `global_stride`-th sample), and the player
positions at the window's times: feature sample i stands for time i / fps and takes the positions sample nearest
that time, so caches at different rates, or a sample or two apart in length, line up. Missing, uncalibrated and
non-finite player slots are masked.

Caches are opened on first use in each process (DataLoader workers open their own); windows are sliced from the
files, and whole-half arrays (global features, positions) live in an LRU of `cache_mb`, so memory stays bounded
whatever the dataset's size.
"""

from __future__ import annotations

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


class LRU(OrderedDict):
    """A dict of arrays that keeps the most recently used ones within `max_bytes`."""

    def __init__(self, max_bytes: int):
        super().__init__()
        self.max_bytes, self.bytes = max_bytes, 0

    def get_or(self, key, make: Callable):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        self.bytes += sum(a.nbytes for a in value) if isinstance(value, tuple) else value.nbytes
        while self.bytes > self.max_bytes and len(self) > 1:
            old = self.popitem(last=False)[1]
            self.bytes -= sum(a.nbytes for a in old) if isinstance(old, tuple) else old.nbytes
        return value


class CacheReader:
    """Windows, global features and positions of halves, read lazily from their caches.

    Windows are sliced from the HDF5 file (or from the half's features when they are in memory); whole-half
    arrays (global features, positions) are kept in an LRU of `cache_mb` MiB per process, and at most
    `max_open` files stay open.
    """

    def __init__(self, cache_mb: float = 1024, global_stride: int = 1, max_open: int = 64):
        self.cache_bytes, self.global_stride, self.max_open = int(cache_mb * 2**20), global_stride, max_open
        self._pid = None

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

    def window(self, half: Half, anchor: int, size: int, blur: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """([size, D] float32, [size] bool) centred on `anchor`; with blur K, sample i shows sample K * (i // K)."""
        index = np.arange(anchor - size // 2, anchor - size // 2 + size)
        mask = (index >= 0) & (index < half.length)
        source = (index // blur) * blur
        out = np.zeros((size, half.dim), np.float32)
        if mask.any():
            in_memory = self._arrays.get((half.features, 1)) if self._pid == os.getpid() else None
            if in_memory is not None:
                out[mask] = in_memory[source[mask]]
            else:
                lo, hi = source[mask].min(), source[mask].max() + 1
                out[mask] = self._open(half.features, "features")["features"][lo:hi][source[mask] - lo]
        return out, mask

    def global_features(self, half: Half) -> np.ndarray:
        """[ceil(N / stride), D]: the half's features, every `global_stride`-th sample."""
        h5 = self._open(half.features, "features")
        return self._arrays.get_or((half.features, self.global_stride),
                                   lambda: h5["features"][:: self.global_stride].astype(np.float32))

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

    def standardise(self, features: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """(x - mean) / std on real rows; padding stays zero."""
        if self.mean is None:
            return features
        out = (features - self.mean) / self.std
        return out if mask is None else np.where(mask[:, None], out, 0.0).astype(np.float32)


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

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        """The sample indices one training epoch visits, shuffled."""
        return rng.permutation(len(self))

    def __getitem__(self, i: int) -> dict:
        half, anchor, inputs = self.halves[self.half_index[i]], int(self.anchors[i]), self.inputs
        local, local_mask = self.reader.window(half, anchor, inputs.window, inputs.blur)
        local = inputs.standardise(local, local_mask)
        if inputs.with_global:
            global_ = inputs.standardise(self.reader.global_features(half))
        else:
            global_ = np.zeros((1, half.dim), np.float32)  # one masked sample: "no global context"
        xy, xy_mask = (self.reader.positions(half, anchor, inputs.window, inputs.players) if inputs.with_positions
                       else (np.zeros((inputs.window, 1, 2), np.float32), np.zeros((inputs.window, 1), bool)))
        return {"local": local, "local_mask": local_mask, "global": global_, "global_valid": inputs.with_global,
                "positions": xy, "positions_mask": xy_mask, "anchor": anchor, "label": int(self.labels[i]),
                "caption": self.captions[i] if self.captions else None}


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


def pad_stack(arrays: list[np.ndarray], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[n_i, ...] arrays -> ([B, length, ...] zero-padded, [B, length] bool mask of real rows)."""
    out = np.zeros((len(arrays), length, *arrays[0].shape[1:]), arrays[0].dtype)
    mask = np.zeros((len(arrays), length), bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
        mask[i, : len(a)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


class Collate:
    """A list of samples -> Batch. Global features pad to the batch's longest half; with a tokenizer, captions become
    tokens (its `encode_batch`: at most max_tokens - 1 tokens, then the end token, padded with its pad id)."""

    def __init__(self, tokenizer=None, max_tokens: int = 100):
        self.tokenizer, self.max_tokens = tokenizer, max_tokens

    def __call__(self, samples: list[dict]) -> Batch:
        def stack(key):
            return torch.from_numpy(np.stack([s[key] for s in samples]))

        global_, global_mask = pad_stack([s["global"] for s in samples], max(len(s["global"]) for s in samples))
        global_mask &= torch.tensor([s["global_valid"] for s in samples])[:, None]
        batch = Batch(
            local=stack("local"), local_mask=stack("local_mask"), global_=global_, global_mask=global_mask,
            positions=stack("positions"), positions_mask=stack("positions_mask"),
            anchor=torch.tensor([s["anchor"] for s in samples]), label=torch.tensor([s["label"] for s in samples]))
        if self.tokenizer is not None and samples[0]["caption"] is not None:
            batch.tokens, batch.token_mask = self.tokenizer.encode_batch([s["caption"] for s in samples],
                                                                         self.max_tokens)
        return batch
