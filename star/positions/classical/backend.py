"""The `classical` Localizer: a frames cache in, a half's positions out (see the package docstring)."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from star.data.cache import open_cache
from star.errors import InputError
from star.positions.backends import HalfSource, Localizer, Positions, samples_spanned
from star.positions.classical.tracker import HalfTracker


class ClassicalLocalizer(Localizer):
    def __init__(self, config: dict):
        super().__init__(config)
        self.settings = config["classical"]

    def localize(self, source: HalfSource) -> Positions:
        if source.frames is None:
            raise InputError("the classical backend needs a frames cache (--frames)")
        # one BLAS thread: the products here are small, and more threads only spin (a third more CPU time)
        with threadpool_limits(1):
            with open_cache(source.frames, "frames") as h5:
                frames = h5["frames"]
                frames_fps = float(h5.attrs["fps"])
                if frames_fps + 1e-9 < self.fps:
                    raise InputError(f"{source.frames}: frames at {frames_fps} fps cannot give positions at "
                                     f"{self.fps} fps (positions.fps must not exceed decode.fps)")
                length = source.length or samples_spanned(len(frames), frames_fps, self.fps)
                picks = np.minimum(np.round(np.arange(length) * frames_fps / self.fps).astype(int), len(frames) - 1)
                tracker = HalfTracker(self.settings, (frames.shape[2], frames.shape[1]), self.fps)
                tracker.calibrate_rig([frames[i] for i in _spread(picks, self.settings["rig_frames"])])
                progress = tqdm(picks, desc=f"positions {source.game} half {source.half}", unit="frame",
                                leave=False)
                people = [tracker.step(frames[i]) for i in progress]
            return tracker.positions(people, self.max_players)

    def sources(self, source: HalfSource) -> list:
        return [source.frames] if source.frames else []


def _spread(indices: np.ndarray, count: int) -> np.ndarray:
    """`count` entries of `indices`, evenly spread."""
    if not len(indices):
        return indices
    return indices[np.linspace(0, len(indices) - 1, min(count, len(indices))).astype(int)]
