"""`star features-extract`: PP-TimesFormer clip features of one half, one per second of video (1 fps).

Clip i samples T frames at i + window_s * k/T - shift, k = 0..T-1, each the nearest decoded frame (clamped at
the video's ends): shift 0 (`alignment: start`, the window [i, i + window_s) as Baidu's SoccerNet features, the
`base` preset's default) or window_s / 2 (`centre`, the clip centred on its second, the `tiny` preset's).
Frames are resized (short side to the model's size, bilinear) and centre-cropped, as PaddleVideo does, and scaled
to [0, 1]. The frames cache is read in slices,
one batch of clips at a time, so memory does not grow with the half's length.

Paddle reads MKL_DEBUG_CPU_TYPE and OMP_NUM_THREADS when it is imported: `run` sets them before importing it
(the Snakemake rule also sets them in the rule's shell).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from star.config import section
from star.data.cache import CacheWriter, open_cache
from star.errors import InputError

ENCODER = "pptimesformer"
FEATURE_FPS = 1.0


# preset -> (window_s, alignment) when the config leaves them null
CLIP_DEFAULTS = {"base": (5.0, "start"), "tiny": (4.0, "centre")}


def clip_window(cfg: dict) -> tuple[float, str]:
    """(window_s, alignment) of a features.pptimesformer section, nulls taken from its preset."""
    window_s, alignment = CLIP_DEFAULTS[cfg["preset"]]
    return float(cfg.get("window_s") or window_s), cfg.get("alignment") or alignment


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


def extract_features(model, frames_h5, size: int, frames: int, window_s: float, batch_size: int,
                     alignment: str = "centre"):
    """Yield [b, D] float32 feature batches for every clip of an open frames cache, in order."""
    import paddle

    fps = float(frames_h5.attrs["fps"])
    index = clip_frame_indices(frames_h5["times"][:], fps, frames, window_s, alignment)   # [n_clips, T]
    for start in tqdm(range(0, len(index), batch_size), desc="clips", unit="batch", leave=False):
        batch = index[start:start + batch_size]
        lo, hi = int(batch.min()), int(batch.max()) + 1
        decoded = preprocess(frames_h5["frames"][lo:hi], size)
        with paddle.no_grad():
            out = model.features(paddle.to_tensor(to_clips(decoded, batch - lo)))
        yield out.numpy().astype(np.float32)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", required=True, help="frames cache of one half (HDF5, from star decode)")
    parser.add_argument("--out", required=True, help="features cache to write (HDF5)")
    parser.add_argument("--weights", help="PP-TimesFormer .pdparams (overrides features.pptimesformer.weights)")
    parser.add_argument("--config", help="features.pptimesformer section: inline JSON or a YAML file")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="CPU threads")


def run(args: argparse.Namespace) -> int:
    from star.features.timesformer import load_model, setup_paddle
    from star.provenance import code_hash, record

    cfg = section("features.pptimesformer", args.config)
    window_s, alignment = clip_window(cfg)
    cfg = {**cfg, "window_s": window_s, "alignment": alignment}  # recorded as used
    weights = args.weights or cfg["weights"]
    if weights is None:
        raise InputError("no encoder weights: pass --weights or set features.pptimesformer.weights "
                         "(star encoder-finetune writes them)")
    setup_paddle(args.threads)
    model, model_cfg, weights_sha = load_model(cfg["preset"], weights, cfg["frames"])
    with open_cache(args.frames, "frames") as frames_h5:
        attrs = dict(frames_h5.attrs)
        if not len(frames_h5["times"]):
            raise InputError(f"{args.frames}: frames cache holds no frames")
        check_frame_rate(args.frames, float(attrs["fps"]), model_cfg.frames, cfg["window_s"])
        provenance = record("features-extract", cfg, code_hash(__name__), sources=[args.frames],
                            weights=str(weights), weights_sha256=weights_sha, model=asdict(model_cfg))
        with CacheWriter(args.out, "features", provenance, game=attrs["game"], half=int(attrs["half"]),
                         fps=FEATURE_FPS, dim=model_cfg.width, encoder=ENCODER, weights_sha256=weights_sha,
                         frames_per_clip=model_cfg.frames, window_s=window_s, alignment=alignment) as writer:
            for features in extract_features(model, frames_h5, model_cfg.image_size, model_cfg.frames,
                                             window_s, cfg["batch_size"], alignment):
                writer.append("features", features)
    print(f"star features-extract: wrote {Path(args.out)} ({model_cfg.width}-d at {FEATURE_FPS:g} fps)")
    return 0
