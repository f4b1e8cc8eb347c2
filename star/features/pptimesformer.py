"""PP-TimesFormer as a video encoder (PaddlePaddle; the model is star.features.timesformer): one clip per second,
T frames over `window_s` seconds aligned at the clip's `start` (Baidu's SoccerNet features, the `base` preset's
default) or `centre` (the `tiny` preset's). Config section: `features.pptimesformer`.

Paddle reads MKL_DEBUG_CPU_TYPE and OMP_NUM_THREADS when it is imported: the encoder sets them before importing it
(the Snakemake rule also sets them in the rule's shell).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

from star.errors import InputError
from star.features.clips import check_frame_rate, clip_frame_indices, preprocess, to_clips
from star.features.encoder import VideoEncoder

# preset -> (window_s, alignment) when the config leaves them null
CLIP_DEFAULTS = {"base": (5.0, "start"), "tiny": (4.0, "centre")}


def clip_window(cfg: dict) -> tuple[float, str]:
    """(window_s, alignment) of a features.pptimesformer section, nulls taken from its preset."""
    window_s, alignment = CLIP_DEFAULTS[cfg["preset"]]
    return float(cfg.get("window_s") or window_s), cfg.get("alignment") or alignment


def extract_features(model, frames_h5, size: int, frames: int, window_s: float, batch_size: int,
                     alignment: str = "centre") -> Iterator[np.ndarray]:
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


class PPTimesFormerEncoder(VideoEncoder):
    def __init__(self, cfg: dict, weights: str | None, threads: int):
        from star.features.timesformer import load_model, setup_paddle

        window_s, alignment = clip_window(cfg)
        super().__init__({**cfg, "window_s": window_s, "alignment": alignment}, weights, threads)  # as used
        self.weights = weights or cfg["weights"]
        if self.weights is None:
            raise InputError("no encoder weights: pass --weights or set features.pptimesformer.weights "
                             "(star encoder-finetune writes them)")
        setup_paddle(threads)
        self.model, self.model_cfg, self.weights_sha = load_model(cfg["preset"], self.weights, cfg["frames"])
        self.dim = self.model_cfg.width

    def check(self, path, frames_h5) -> None:
        check_frame_rate(path, float(frames_h5.attrs["fps"]), self.model_cfg.frames, self.cfg["window_s"])

    def features(self, frames_h5) -> Iterator[np.ndarray]:
        yield from extract_features(self.model, frames_h5, self.model_cfg.image_size, self.model_cfg.frames,
                                    self.cfg["window_s"], self.cfg["batch_size"], self.cfg["alignment"])

    def provenance(self) -> dict:
        return {"weights": str(self.weights), "weights_sha256": self.weights_sha, "model": asdict(self.model_cfg)}

    def attrs(self) -> dict:
        return {"weights_sha256": self.weights_sha, "frames_per_clip": self.model_cfg.frames,
                "window_s": self.cfg["window_s"], "alignment": self.cfg["alignment"]}
