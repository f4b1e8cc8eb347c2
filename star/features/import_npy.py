"""`star features-import`: SoccerNet's precomputed `.npy` features of one half -> a features cache.

Baidu (8576-d, 1 fps), ResNET_TF2 (2048-d, 2 fps), SoccerNet-v1's C3D (4096-d, 2 fps) and I3D (1024-d, 2 fps),
and the PCA512 version of each 2-fps set (512-d): `features.import.<encoder>` in the schema. The cache stores the fps
and dim declared in `features.import.<encoder>` after checking them against the file: the dimension must
match, and when the video's duration is known (`--duration`, the video's container, or a frames cache of the
half) rows / fps must match it within `tolerance_s`, which catches a 2-fps file declared 1 fps (a known cause of
irreproducible SoccerNet results); without one, the rows must reach the half's last annotation and cover no
more than LONGEST_HALF_S. Complex arrays and rows holding NaN or inf are refused. The file is memory-mapped and
copied in chunks: a half of Baidu features is 90 MB, the whole split about 87 GB.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from star import registry
from star.config import section
from star.data.cache import CacheWriter, open_cache
from star.data.soccernet import load_labels
from star.errors import InputError

CHUNK_ROWS = 512
LONGEST_HALF_S = 3600   # SoccerNet half videos last 45-50 min (55 at most): rows covering more are at another rate
ENCODERS = registry.imported_encoders()  # baidu, resnet, resnet_pca512, c3d, c3d_pca512, i3d, i3d_pca512


class FeaturesFileError(InputError):
    """A `.npy` features file that is unreadable or does not match its declared layout."""


def open_npy(path: str | Path) -> np.ndarray:
    """Memory-map a 2-D numeric `.npy`; FeaturesFileError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FeaturesFileError(f"{path}: features file does not exist")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FeaturesFileError(f"{path}: not a readable .npy array ({exc})") from None
    if array.ndim != 2:
        raise FeaturesFileError(f"{path}: expected a 2-D array [rows, dim], found shape {array.shape}")
    if not len(array):
        raise FeaturesFileError(f"{path}: holds no rows")
    if array.dtype.kind not in "iuf":   # complex would silently lose its imaginary part in float32
        raise FeaturesFileError(f"{path}: expected real numbers, found dtype {array.dtype}")
    return array


def check_layout(path, array: np.ndarray, spec: dict, encoder: str, duration_s: float | None,
                 last_annotation_s: int | None = None, half: int | None = None) -> None:
    """Dimension against the config; rows against the duration at the declared fps, or, without a video, against
    the bounds of a half: at least its last annotation (rows that end before it are at a higher rate than declared,
    or truncated) and at most LONGEST_HALF_S (a 2-fps file read at 1 fps looks twice as long as a 45-min half)."""
    rows, dim = array.shape
    if dim != spec["dim"]:
        raise FeaturesFileError(f"{path}: rows are {dim}-d but features.import.{encoder}.dim is {spec['dim']}")
    covered = rows / spec["fps"]
    if duration_s is not None and not (np.isfinite(duration_s) and duration_s > 0):
        raise FeaturesFileError(f"{path}: the half's duration must be a positive number of seconds, not {duration_s}")
    if duration_s is None and covered > LONGEST_HALF_S + spec["tolerance_s"]:
        raise FeaturesFileError(
            f"{path}: {rows} rows at the declared {spec['fps']:g} fps cover {covered / 60:.1f} min, longer than any "
            f"SoccerNet half (45-50 min; at most {LONGEST_HALF_S // 60} min): the rows fit "
            f"{rows / (50 * 60):.2f}-{rows / (45 * 60):.2f} fps for a 45-50 min half; "
            f"check features.import.{encoder}.fps")
    if duration_s is None:
        if last_annotation_s and covered + spec["tolerance_s"] < last_annotation_s:
            raise FeaturesFileError(
                f"{path}: {rows} rows at the declared {spec['fps']:g} fps cover {covered:.0f} s but half {half} has "
                f"an annotation at {last_annotation_s} s (the rows fit at most {rows / last_annotation_s:.2f} fps): "
                f"check features.import.{encoder}.fps, or the file is truncated")
        return
    if abs(covered - duration_s) > spec["tolerance_s"]:
        implied = rows / duration_s
        raise FeaturesFileError(
            f"{path}: {rows} rows at the declared {spec['fps']:g} fps cover {covered:.0f} s but the video lasts "
            f"{duration_s:.0f} s (the rows fit {implied:.2f} fps): check features.import.{encoder}.fps")


def last_annotation(labels_path: str, half: int) -> int | None:
    """Second of the half's last annotation (None when it has none)."""
    seconds = [a.seconds for a in load_labels(labels_path).half(half)]
    return max(seconds, default=None)


def video_duration(frames_path: str, game: str, half: int) -> float:
    """Duration (s) of a half from its frames cache, which must be of the same game and half."""
    with open_cache(frames_path, "frames") as h5:
        have_game, have_half = h5.attrs["game"], int(h5.attrs["half"])
        if (have_game, have_half) != (game, half):
            raise InputError(f"{frames_path}: frames of game {have_game!r} half {have_half}, "
                             f"not game {game!r} half {half}")
        return len(h5["times"]) / float(h5.attrs["fps"])


def video_seconds(video_path: str) -> float:
    """Duration (s) of a video from its container, without decoding it."""
    import av

    try:
        with av.open(str(video_path)) as container:
            duration = container.duration
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{video_path}: not a readable video ({exc})") from None
    if duration is None:
        raise InputError(f"{video_path}: the container does not state its duration; pass --duration")
    return duration / av.time_base


def finite_chunks(path, array: np.ndarray):
    """The rows in float32 chunks of CHUNK_ROWS, refusing non-finite values with the first bad row's index."""
    for start in range(0, len(array), CHUNK_ROWS):
        chunk = np.asarray(array[start:start + CHUNK_ROWS], dtype=np.float32)
        bad = ~np.isfinite(chunk).all(axis=1)
        if bad.any():
            first = start + int(np.flatnonzero(bad)[0])
            raise FeaturesFileError(f"{path}: row {first} (and {int(bad.sum()) - 1} more in rows {start}-"
                                    f"{start + len(chunk) - 1}) holds NaN or inf")
        yield chunk


def copy_rows(path, array: np.ndarray, writer: CacheWriter) -> None:
    """Append the rows in chunks as float32 (checked finite)."""
    for chunk in finite_chunks(path, array):
        writer.append("features", chunk)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--npy", required=True, help="SoccerNet features file of one half (.npy)")
    parser.add_argument("--encoder", required=True, choices=ENCODERS,
                        help="which feature set (its fps and dim come from features.import.<encoder>)")
    parser.add_argument("--game", required=True, help="game id stored in the cache")
    parser.add_argument("--half", required=True, type=int, choices=registry.halves(), help="half stored in the cache")
    parser.add_argument("--out", required=True, help="features cache to write (HDF5)")
    duration = parser.add_mutually_exclusive_group()
    duration.add_argument("--duration", type=float, help="video duration (s), to check the row count")
    duration.add_argument("--video", help="the half's video, to check the row count (read from its container)")
    duration.add_argument("--frames", help="frames cache of the same half, to check the row count")
    parser.add_argument("--labels", help="the game's Labels-caption.json: without a duration, the rows must reach "
                        "the half's last annotation")
    parser.add_argument("--config", help="features.import.<encoder> (file, fps, dim, tolerance_s): inline JSON "
                        "or a YAML file; default: the schema's")


def run(args: argparse.Namespace) -> int:
    from star.provenance import code_hash, record

    spec = section(f"features.import.{args.encoder}", args.config) if args.config \
        else section("features.import")[args.encoder]
    array = open_npy(args.npy)
    duration = args.duration
    if duration is not None and not (np.isfinite(duration) and duration > 0):   # nan would pass every comparison
        raise InputError(f"--duration must be a positive number of seconds, not {duration}")
    if args.video:
        duration = video_seconds(args.video)
    elif args.frames:
        duration = video_duration(args.frames, args.game, args.half)
    last = last_annotation(args.labels, args.half) if args.labels and duration is None else None
    check_layout(args.npy, array, spec, args.encoder, duration, last, args.half)
    provenance = record("features-import", spec, code_hash(__name__), sources=[args.npy], duration_s=duration)
    with CacheWriter(args.out, "features", provenance, game=args.game, half=args.half, fps=float(spec["fps"]),
                     dim=int(spec["dim"]), encoder=args.encoder, source=str(args.npy)) as writer:
        copy_rows(args.npy, array, writer)
    print(f"star features-import: wrote {args.out} ({len(array)} rows, {spec['dim']}-d at {spec['fps']:g} fps)")
    return 0
