"""Tiny test videos whose frames tell their own index: red and green encode k // 16 and k % 16."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def coded_frame(k: int, width: int = 64, height: int = 48) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = 16 * (k // 16 % 16) + 8
    frame[..., 1] = 16 * (k % 16) + 8
    return frame


def frame_code(frame: np.ndarray) -> int:
    r, g = frame[..., 0].mean(), frame[..., 1].mean()
    return int(round((r - 8) / 16)) * 16 + int(round((g - 8) / 16))


def write_video(path: Path, times: list[float], width: int = 64, height: int = 48, rate: int = 25) -> Path:
    """Frame k shown from times[k] (seconds; may start late or be irregular), millisecond timestamps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)  # keep irregular stamps exact
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for k, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(coded_frame(k, width, height), format="rgb24")
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
