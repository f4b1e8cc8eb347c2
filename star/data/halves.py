"""The per-half store: where a half's caches are (`Half`), what a model reads from them (`Inputs`), and
`CacheReader`, which reads windows, global features and positions lazily and keeps what depends only on the half.

What depends only on the half is computed once per half and shared by all its samples: its standardised global
features (every `global_stride`-th sample, float32 or float16; for STaR's captioner only the frames Filter/Memory
keeps, with their sample indices) and its positions live in a per-process store (an LRU of `cache_mb`), so memory
stays bounded whatever the dataset's size. Windows are sliced from the standardised half when it is in the store
whole at full rate in float32 (the same values as standardising the window), or when the half is small (at most
1/SMALL_HALF of the store: a thousand such halves fit, as many as SoccerNet has) and is then read and standardised
once; else read from the file. Caches are
opened on first use in each process (DataLoader workers open their own). The epoch's order of halves can be given
(`plan`): the kernel then reads the next halves ahead while this one is computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from star.data.cache import BALL_ROLE, check_features, open_cache, require_ball
from star.data.games import Game
from star.data.soccernet import Annotation, load_labels
from star.errors import InputError
from star.data.selection import filter_memory

SMALL_HALF = 1024  # a half of at most cache_mb / SMALL_HALF is kept whole for its windows: read once, not per window


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
    for half in out[1:]:
        check_features(half.features, half.fps, half.dim, (out[0].fps, out[0].dim), f"{out[0].features} holds")
    return out


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def advise(path: Path, advice: str) -> None:
    """posix_fadvise(`advice`) on a whole file, where the OS has it (a hint: it changes no data)."""
    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, getattr(os, advice))
        finally:
            os.close(fd)


def keep_freed_memory() -> bool:
    """Serve every allocation of this process from its heap and never hand freed memory back (glibc's mallopt; a
    no-op returning False elsewhere). Why: a half's global features are 92 MB at SoccerNet scale, and an array that
    large is mmap'ed fresh and unmapped when freed, so every half the store reads lands in pages the kernel has
    just given to the page cache of the next file, and the first touch of a page is what costs (bench/README.md:
    0.7 s of CPU for a fresh 92-MB array on the development VM, 0.02 s for a reused one). Kept in the heap, the
    store's evicted halves become the next ones'. The process's resident memory stays at its peak, which each
    rule's declared `mem_mb` already is."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def nbytes(value) -> int:
    return sum(nbytes(a) for a in value) if isinstance(value, tuple) else 0 if value is None else value.nbytes


class LRU(OrderedDict):
    """A dict of arrays (or tuples of arrays and None) that keeps the most recently used ones within `max_bytes`;
    `evicted(key)` is called for each key it drops."""

    def __init__(self, max_bytes: int, evicted: Callable = lambda key: None):
        super().__init__()
        self.max_bytes, self.bytes, self.evicted = max_bytes, 0, evicted

    def get_or(self, key, make: Callable):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        self.bytes += nbytes(value)
        while self.bytes > self.max_bytes and len(self) > 1:
            key, dropped = self.popitem(last=False)
            self.bytes -= nbytes(dropped)
            self.evicted(key)
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
            advise(upcoming, "POSIX_FADV_WILLNEED")

    def _evicted(self, key: tuple) -> None:
        # A half's global features leave the store: its file's pages leave the page cache too, so the next half is
        # read into pages just freed rather than into memory the machine has not touched lately (on a VM the
        # first touch of a page costs CPU: 3.1-3.7 s of system time for 24 halves of 92 MB, against 0.6 s when the
        # read pages are dropped as they go; bench/README.md)
        if len(key) == 5 and isinstance(key[0], Path):
            advise(key[0], "POSIX_FADV_DONTNEED")

    def _reset_if_forked(self) -> None:
        # h5py handles must not cross a fork: each DataLoader worker opens its own
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._files: OrderedDict = OrderedDict()
            self._arrays = LRU(self.cache_bytes, self._evicted)

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
        whole = rows is not None and self.global_stride == 1 and rows.dtype == np.float32 and len(rows) == half.length
        if not whole and half.length * half.dim * 4 <= self.cache_bytes // SMALL_HALF:
            rows = self._arrays.get_or((half.features, "rows", inputs.norm_key()),
                                       lambda: self._standardised(half, inputs, 1))
            whole = True
        if whole:
            out[mask] = rows[source[mask]]  # the whole half (every frame kept), already standardised
            return out, mask
        lo, hi = source[mask].min(), source[mask].max() + 1
        out[mask] = self._open(half.features, "features")["features"][lo:hi][source[mask] - lo]
        if inputs.mean is not None:
            out[mask] -= inputs.mean
            out[mask] /= inputs.std
        return out, mask

    def _standardised(self, half: Half, inputs: Inputs, stride: int) -> np.ndarray:
        """Every `stride`-th sample of the half, float32, standardised (in place: no whole-half temporaries; the
        same float operations as a window's, so a window cut from it is the window read alone)."""
        h5 = self._open(half.features, "features")
        rows = h5["features"][::stride] if stride > 1 else h5["features"][:]
        rows = rows.astype(np.float32, copy=False)
        if inputs.mean is not None:
            rows -= inputs.mean
            rows /= inputs.std
        return rows

    def global_features(self, half: Half, inputs: Inputs) -> tuple[tuple, np.ndarray, np.ndarray | None]:
        """(store key, standardised features [G, D], their sample indices [G] or None): every `global_stride`-th
        sample of the half (times None), or only the frames Filter/Memory keeps of them (`inputs.select`).
        Computed once per half and process while it stays in the store; callers must not write to it."""
        key = self._global_key(half, inputs)

        def read():
            self._read_ahead(half.features)
            rows = self._standardised(half, inputs, self.global_stride)
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

    def _half_attributes(self, path: Path) -> tuple[np.ndarray, ...]:
        """A positions cache's team [N, P], role [N, P], ball [N, 2] (zero where unseen) and ball seen [N]."""
        h5 = self._open(path, "positions")

        def read():
            require_ball(h5, path)
            seen = h5["ball_visible"][:] & h5["calibrated"][:]
            ball = np.where(seen[:, None], h5["ball"][:], 0.0).astype(np.float32)
            return h5["team"][:].astype(np.int64), h5["role"][:].astype(np.int64), ball, seen

        return self._arrays.get_or((path, "attributes"), read)

    def positions(self, half: Half, anchor: int, size: int, players: int,
                  attributes: bool = False) -> tuple[np.ndarray, ...]:
        """([size, P, 2] metres, [size, P] bool) at the times of the window's samples (nearest positions sample);
        with `attributes` also team and role [size, P + 1] each, the ball in the last slot (role BALL_ROLE)."""
        out_xy = np.zeros((size, players, 2), np.float32)
        out_mask = np.zeros((size, players), bool)
        out_team, out_role = np.full((size, players), -1, np.int64), np.zeros((size, players), np.int64)
        ball, ball_mask = np.zeros((size, 1, 2), np.float32), np.zeros((size, 1), bool)
        if half.positions is not None:
            xy, mask, fps = self._half_positions(half.positions)
            times = np.arange(anchor - size // 2, anchor - size // 2 + size) / half.fps
            index = np.round(times * fps).astype(np.int64)
            inside = (index >= 0) & (index < len(xy))
            k = min(xy.shape[1], players)
            out_xy[inside, :k] = xy[index[inside], :k]
            out_mask[inside, :k] = mask[index[inside], :k]
            if attributes:
                team, role, half_ball, seen = self._half_attributes(half.positions)
                out_team[inside, :k], out_role[inside, :k] = team[index[inside], :k], role[index[inside], :k]
                ball[inside, 0], ball_mask[inside, 0] = half_ball[index[inside]], seen[index[inside]]
        if not attributes:
            return out_xy, out_mask
        ball_role = np.full((size, 1), BALL_ROLE, np.int64)
        return (np.concatenate([out_xy, ball], 1), np.concatenate([out_mask, ball_mask], 1),
                np.concatenate([out_team, np.full((size, 1), -1, np.int64)], 1),
                np.concatenate([out_role, ball_role], 1))


@dataclass
class Inputs:
    """What a model reads: window lengths and which optional inputs to load (the others come fully masked)."""
    window: int                 # local samples
    with_global: bool = True
    with_positions: bool = False
    position_attributes: bool = False  # team, role and the ball too (STaR's sss_inputs `xy_team_role_ball`)
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
