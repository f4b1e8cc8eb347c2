"""The HDF5 caches every stage writes, in one place: layout, provenance, atomic writes, lazy reads.

One file per game half and stage, written by one rule. Layout by kind (N = samples at `fps`):

  frames     frames  uint8   [N, H, W, 3]   RGB frames picked at `fps`
             times   float64 [N]            video time (s) each frame stands for: i / fps
  features   features float32 [N, D]        one clip feature per sample; finite
  positions  xy      float32 [N, P, 2]      pitch metres, origin at the centre, +y the near touchline
             team    int8    [N, P]         0 left, 1 right (the side a team defends), -1 unknown
             role    int8    [N, P]         ROLES index
             mask    bool    [N, P]         slot holds a detection
             calibrated bool [N]            a camera was fitted for this sample (else slots are empty)
             jersey  int8    [N, P]         shirt number, -1 unknown                          (format 2)
             ball    float32 [N, 2]         the ball's ground point, pitch metres (0 where not seen)  (format 2)
             ball_visible bool [N]          the ball was seen in this sample                  (format 2)

Positions caches carry `format` (POSITIONS_FORMAT). Format 1 (no attribute) had no jersey and no ball: readers
take its ball as never seen, and a model that reads the ball refuses it (`require_ball`).

Every file has attributes `kind`, `game` (id), `half`, `fps`, `length` (N), the kind's own (`dim`, `encoder`,
...), and `provenance`: JSON with the stage, its config and hash, the code hash, and sha256 of the source files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from star.errors import InputError
from star.provenance import atomic_path

ROLES = ("player", "goalkeeper", "referee", "other")
BALL_ROLE = len(ROLES)   # the ball's role index where it rides as one more slot (STaR's SSS, `xy_team_role_ball`)
TEAMS = ("left", "right")
POSITIONS_FORMAT = 2   # 2: + jersey, ball, ball_visible


@dataclass(frozen=True)
class Kind:
    datasets: dict[str, str]        # name -> dtype
    attrs: tuple[str, ...]          # attributes a file of this kind must carry
    finite: tuple[str, ...] = ()    # float datasets that must hold no NaN/inf


KINDS = {
    "frames": Kind({"frames": "uint8", "times": "float64"}, ("game", "half", "fps", "width", "height", "source")),
    "features": Kind({"features": "float32"}, ("game", "half", "fps", "dim", "encoder"), finite=("features",)),
    "positions": Kind(
        {"xy": "float32", "team": "int8", "role": "int8", "mask": "bool", "calibrated": "bool", "jersey": "int8",
         "ball": "float32", "ball_visible": "bool"},
        ("game", "half", "fps", "backend", "max_players", "format"), finite=("ball",),
    ),
}


class CacheError(InputError):
    """A cache file that is missing, of the wrong kind, or does not match what the reader expects."""


class CacheWriter:
    """Write one cache file atomically; datasets can be streamed with `append`.

    with CacheWriter(path, "features", provenance, fps=1.0, dim=768, encoder="pptimesformer") as w:
        w.append("features", batch)   # [b, D], repeated
    """

    def __init__(self, path: str | Path, kind: str, provenance: dict, **attrs):
        if kind not in KINDS:
            raise ValueError(f"unknown cache kind {kind!r}")
        self.path, self.kind, self.spec = Path(path), kind, KINDS[kind]
        missing = [a for a in self.spec.attrs if a not in attrs]
        if missing:
            raise ValueError(f"{kind} cache {self.path} needs attributes {missing}")
        self.attrs = {"kind": kind, "provenance": json.dumps(provenance, sort_keys=True), **attrs}

    def __enter__(self) -> CacheWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self.h5 = h5py.File(tmp, "w")
        return self

    def _check(self, name: str, array: np.ndarray) -> np.ndarray:
        if name not in self.spec.datasets:
            raise ValueError(f"{self.kind} cache has no dataset {name!r}")
        array = np.asarray(array, dtype=self.spec.datasets[name])
        if name in self.spec.finite and not np.isfinite(array).all():
            raise CacheError(f"{self.path}: non-finite values (NaN or inf) in {name!r}")
        return array

    def write(self, name: str, array) -> None:
        array = self._check(name, array)
        chunks = (min(len(array), 64), *array.shape[1:]) if array.ndim and len(array) else None
        self.h5.create_dataset(name, data=array, chunks=chunks, compression="lzf" if chunks else None,
                               track_times=False)   # no clock time in the file: two builds, the same bytes

    def append(self, name: str, array) -> None:
        array = self._check(name, array)
        if name not in self.h5:
            self.h5.create_dataset(
                name, shape=(0, *array.shape[1:]), maxshape=(None, *array.shape[1:]),
                dtype=array.dtype, chunks=(64 if array.ndim == 1 else 1, *array.shape[1:]), compression="lzf",
                track_times=False,
            )
        ds = self.h5[name]
        ds.resize(ds.shape[0] + len(array), axis=0)
        ds[-len(array):] = array

    def _finalize(self) -> None:
        absent = [n for n in self.spec.datasets if n not in self.h5]
        if absent:
            raise CacheError(f"{self.path}: datasets {absent} were never written")
        lengths = {n: self.h5[n].shape[0] for n in self.spec.datasets}
        if len(set(lengths.values())) > 1:
            raise CacheError(f"{self.path}: datasets differ in length {lengths}")
        self.attrs["length"] = next(iter(lengths.values()))
        for key, value in self.attrs.items():
            self.h5.attrs[key] = value

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._finalize()
        except BaseException as err:
            self.h5.close()
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self.h5.close()
        return self._atomic.__exit__(exc_type, exc, tb)


def write_cache(path, kind: str, arrays: dict, provenance: dict, **attrs) -> Path:
    """Write a whole cache file at once (see CacheWriter for streaming)."""
    with CacheWriter(path, kind, provenance, **attrs) as writer:
        for name, array in arrays.items():
            writer.write(name, array)
    return Path(path)


def _decoded(value):
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


def open_cache(path: str | Path, kind: str, **expect) -> h5py.File:
    """Open a cache for lazy reading, checking its kind and any expected attributes (e.g. fps=1.0, dim=768).

    Datasets are read on slicing (`f["features"][a:b]`), so memory does not grow with the dataset.
    """
    path = Path(path)
    if not path.is_file():
        raise CacheError(f"{path}: cache file does not exist")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise CacheError(f"{path}: not a readable HDF5 cache ({exc})") from None
    found = _decoded(h5.attrs.get("kind"))
    if found != kind:
        h5.close()
        raise CacheError(f"{path}: expected a {kind} cache, found {found!r}")
    for key, want in expect.items():
        have = _decoded(h5.attrs.get(key))
        same = np.isclose(have, want) if isinstance(want, float) and have is not None else have == want
        if not same:
            h5.close()
            raise CacheError(f"{path}: {key} is {have!r} but the configuration expects {want!r}")
    return h5


def require_ball(h5: h5py.File, path: str | Path) -> None:
    """Raise unless an open positions cache carries the ball (format 2 or later)."""
    if "ball" not in h5 or int(_decoded(h5.attrs.get("format", 1))) < 2:
        raise CacheError(f"{path}: positions cache of format {_decoded(h5.attrs.get('format', 1))} has no ball or "
                         f"jersey (format {POSITIONS_FORMAT} has): rerun positions_localize")


def cache_attrs(path: str | Path) -> dict:
    """All attributes of a cache file, provenance decoded."""
    with h5py.File(path, "r") as h5:
        attrs = {k: _decoded(v) for k, v in h5.attrs.items()}
    attrs["provenance"] = json.loads(attrs.get("provenance", "{}"))
    return attrs


def check_features(path, fps: float, dim: int, expected: tuple[float, int], against: str) -> None:
    """The one check wherever features meet a fixed rate and dimension (the other halves of a split, the train
    split, a trained model): an InputError naming `path` when they differ, e.g. against="the model was trained on"."""
    want_fps, want_dim = expected
    if not np.isclose(float(fps), float(want_fps)) or int(dim) != int(want_dim):
        raise InputError(f"{path}: {dim}-d features at {fps:g} fps, but {against} {want_dim}-d features at "
                         f"{want_fps:g} fps")
