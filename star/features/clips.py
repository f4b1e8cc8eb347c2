"""Clip sampling shared by the video encoders: which decoded frames make the clip of each feature second, and
how frames become a model's input. Clip i samples T frames at i + window_s * k/T - shift, k = 0..T-1, each the
nearest decoded frame (clamped at the video's ends): shift 0 (`start`, the window [i, i + window_s) as Baidu's
SoccerNet features) or window_s / 2 (`centre`, the clip centred on its second). Frames are resized (short side to
the model's size, bilinear) and centre-cropped, as PaddleVideo does, and scaled to [0, 1].
"""

from __future__ import annotations

import math
import sys

import numpy as np
from PIL import Image

FEATURE_FPS = 1.0  # one clip feature per second of video


def clip_sample_times(n_clips: int, frames: int, window_s: float, alignment: str = "centre") -> np.ndarray:
    """[n_clips, T] video times of the T frames of each clip: over [i, i + window_s) (`start`) or centred on i."""
    if alignment not in ("start", "centre"):
        raise ValueError(f"unknown clip alignment {alignment!r} (start or centre)")
    starts = np.arange(n_clips, dtype=np.float64) / FEATURE_FPS - (window_s / 2 if alignment == "centre" else 0.0)
    offsets = window_s * np.arange(frames) / frames
    return starts[:, None] + offsets[None, :]


def nearest_frames(sample_times: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Index of the decoded frame nearest each sample time (ties to the earlier frame), clamped to the video."""
    if len(frame_times) == 1:
        return np.zeros(sample_times.shape, np.int64)
    right = np.clip(np.searchsorted(frame_times, sample_times), 1, len(frame_times) - 1)
    left = right - 1
    # outside the video one of the two differences is negative, which picks the end frame
    pick_right = frame_times[right] - sample_times < sample_times - frame_times[left]
    return np.where(pick_right, right, left)


def clip_frame_indices(frame_times: np.ndarray, fps: float, frames: int, window_s: float,
                       alignment: str = "centre") -> np.ndarray:
    """[n_clips, T] frame indices: one clip per second of a video with len(frame_times) frames at `fps`."""
    n_clips = math.ceil(len(frame_times) / fps / FEATURE_FPS - 1e-9) if len(frame_times) else 0
    return nearest_frames(clip_sample_times(n_clips, frames, window_s, alignment),
                          np.asarray(frame_times, np.float64))


def preprocess(frames: np.ndarray, size: int) -> np.ndarray:
    """[n, H, W, 3] uint8 -> [n, size, size, 3] uint8: short side resized to `size`, then centre crop."""
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        scale = size / min(h, w)
        ow, oh = max(size, round(w * scale)), max(size, round(h * scale))
        image = Image.fromarray(frame).resize((ow, oh), Image.BILINEAR)
        x0, y0 = round((ow - size) / 2), round((oh - size) / 2)
        out[i] = np.asarray(image.crop((x0, y0, x0 + size, y0 + size)))
    return out


def to_clips(frames: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Preprocessed frames [n, S, S, 3] uint8 and clip indices [B, T] -> model input [B, 3, T, S, S] float32."""
    clips = frames[index]                                                   # [B, T, S, S, 3]
    return np.ascontiguousarray(clips.transpose(0, 4, 1, 2, 3), dtype=np.float32) / 255.0


def check_frame_rate(path, fps: float, frames: int, window_s: float) -> None:
    """Warn when the decoded frames are sparser than the clip's samples (the clip then repeats frames)."""
    if 1.0 / fps > window_s / frames + 1e-9:
        print(f"star features-extract: warning: {path} has {fps:g} frames/s but clips sample every "
              f"{window_s / frames:g} s: frames repeat (decode.fps >= {frames / window_s:g} avoids it)",
              file=sys.stderr)
