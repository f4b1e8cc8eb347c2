"""Decode a half video to frames at a fixed rate, picking frames by timestamp (`star decode`).

Sample i stands for video time i / fps (video time 0 = the first frame, whatever the container's start offset).
It holds the frame on screen at that time: the last frame whose timestamp is <= i / fps. Decoding is sequential
(seeking per frame is ~5x slower) and streams into the cache, so a whole half is never held in memory. ffmpeg's
`fps` filter returns frames ~0.5 s late on files with a start offset (FACTS §5): picking by timestamp is exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from star import config as star_config
from star import registry
from star.data.cache import CacheWriter
from star.errors import InputError
from star.provenance import code_hash, record

BATCH = 32            # frames per write
TIME_EPS = 1e-3       # timestamps are rounded to the container's time base (1 ms in mkv)
TRUNCATION_SLACK = 2.0  # seconds a stream may end before its declared duration before we call it truncated


class VideoError(InputError):
    """A video that is missing, unreadable, corrupt or truncated."""


def _output_size(width: int, height: int, target_height: int | None) -> tuple[int, int]:
    if target_height is None or target_height == height:
        return width, height
    new_w = int(round(width * target_height / height / 2)) * 2   # even width keeps swscale happy
    return new_w, target_height


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def iter_frames(path: str | Path, fps: float, height: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time, RGB frame [H, W, 3] uint8) for times 0, 1/fps, 2/fps, ... up to the last frame's timestamp."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: video file does not exist")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: cannot open video ({exc})") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared = _declared_duration(container, stream)
        size = None
        origin = None
        converted = {}

        def rgb(frame) -> np.ndarray:
            """RGB array of `frame`, converted once even when several samples hold it (low-fps video)."""
            if converted.get("frame") is not frame:
                converted.update(frame=frame, rgb=frame.to_ndarray(format="rgb24", width=size[0], height=size[1]))
            return converted["rgb"]

        previous = None
        next_index = 0
        last_time = None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                if origin is None:
                    origin = t
                    size = _output_size(frame.width, frame.height, height)
                t -= origin
                # every sample time before this frame shows the previous frame
                while previous is not None and next_index / fps < t - TIME_EPS:
                    yield next_index / fps, rgb(previous)
                    next_index += 1
                previous = frame   # converted only if a sample picks it (most frames are skipped)
                last_time = t
        except av.FFmpegError as exc:
            raise VideoError(f"{path}: corrupt video, decoding failed after {last_time or 0:.1f} s ({exc})") from None
        if previous is None:
            raise VideoError(f"{path}: no decodable frames")
        if declared is not None and last_time < declared - origin - TRUNCATION_SLACK:
            raise VideoError(
                f"{path}: truncated video, frames stop at {last_time:.1f} s but the container declares {declared:.1f} s"
            )
        while next_index / fps <= last_time + TIME_EPS:
            yield next_index / fps, rgb(previous)
            next_index += 1


def probe(path: str | Path) -> dict:
    """Width, height, frame rate and declared duration of a video (no decoding)."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return {
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "fps": float(stream.average_rate) if stream.average_rate else None,
                "duration": _declared_duration(container, stream),
            }
    except (av.FFmpegError, IndexError) as exc:
        raise VideoError(f"{path}: cannot read video header ({exc})") from None


def decode_half(video: str | Path, out: str | Path, game: str, half: int, cfg: dict) -> Path:
    """Decode one half into a frames cache at `cfg['fps']` (the validated `decode` section)."""
    fps = float(cfg["fps"])
    info = probe(video)
    expected = math.ceil(info["duration"] * fps) if info["duration"] else None   # progress bar only
    provenance = record("video_decode", cfg, code=code_hash(__name__), sources=[video])
    width, height = _output_size(info["width"], info["height"], cfg["height"])
    with CacheWriter(out, "frames", provenance, game=game, half=half, fps=fps, width=width, height=height,
                     source=str(video)) as writer:
        frames, times = [], []
        for t, frame in tqdm(iter_frames(video, fps, cfg["height"]), total=expected, unit="frame",
                             desc=f"decode {game} half {half}", mininterval=2):
            frames.append(frame)
            times.append(t)
            if len(frames) == BATCH:
                writer.append("frames", np.stack(frames))   # [BATCH, H, W, 3]
                writer.append("times", np.asarray(times))
                frames, times = [], []
        if frames:
            writer.append("frames", np.stack(frames))
            writer.append("times", np.asarray(times))
    return Path(out)


def add_arguments(parser) -> None:
    parser.add_argument("--video", required=True, help="half video, e.g. <game>/1_224p.mkv")
    parser.add_argument("--out", required=True, help="frames cache to write (.h5)")
    parser.add_argument("--game", required=True, help="game id recorded in the cache")
    parser.add_argument("--half", required=True, type=int, choices=registry.halves())
    parser.add_argument("--config", help="the `decode` config section: inline JSON or a YAML file")


def run(args) -> None:
    cfg = star_config.section("decode", args.config)
    decode_half(args.video, args.out, args.game, args.half, cfg)
