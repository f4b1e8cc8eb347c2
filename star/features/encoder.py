"""What every video encoder provides (the extracted encoders of star/registry.py, like the Localizer backends):
clip features of a frames cache, one row per second. `star features-extract --encoder NAME` runs any of them.

A backend is one module with a `VideoEncoder` subclass, registered with `extractor="module:Class"`; its settings are
the config section `features.<name>`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np

from star import registry
from star.features.clips import FEATURE_FPS


class VideoEncoder(ABC):
    """One encoder, loaded: `cfg` is its validated config section, `weights` a file or folder (None: the
    section's own), `threads` the CPU threads it may use."""

    fps: float = FEATURE_FPS    # feature rows per second of video
    dim: int                    # feature dimension (known once loaded)

    def __init__(self, cfg: dict, weights: str | None, threads: int):
        self.cfg = cfg

    @abstractmethod
    def features(self, frames_h5) -> Iterator[np.ndarray]:
        """[b, dim] float32 batches for every second of an open frames cache, in order."""

    def check(self, path, frames_h5) -> None:
        """Warn or refuse before any work (e.g. frames sparser than the clip's samples)."""
        return None

    def used(self) -> dict:
        """The settings as used (nulls resolved): the provenance's config."""
        return self.cfg

    def provenance(self) -> dict:
        """Extra provenance (the weights and their checksum, the model's settings)."""
        return {}

    def attrs(self) -> dict:
        """Extra attributes of the features cache."""
        return {}


def encoder_class(name: str) -> type[VideoEncoder]:
    """The VideoEncoder class of a registered video encoder, imported now."""
    entry = registry.encoder(name)
    if entry.kind != "video":
        raise ValueError(f"encoder {name!r} is imported from SoccerNet's .npy files, not computed from video")
    return registry.load(entry.extractor)


def encoder_module(name: str) -> str:
    """The module of a video encoder (what its code hash starts from; imported by name)."""
    return registry.encoder(name).extractor.split(":")[0]
