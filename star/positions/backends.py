"""What every player-localization backend returns, and the registry that picks one by name.

A backend turns one game half into `Positions`: up to P people per sample at `positions.fps`, in pitch metres
(star.geometry.pitch frame), with team (0 left, 1 right = the side the team defends, -1 unknown), role (index into
cache.ROLES), jersey number (-1 unknown), a per-sample `calibrated` flag, and the ball's ground point where it was
seen. A sample that is not calibrated holds no people and no ball.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from star.data.cache import ROLES

BACKENDS = {
    "classical": "star.positions.classical.backend:ClassicalLocalizer",
    "gamestate_json": "star.positions.gamestate_json:GameStateJsonLocalizer",
    "sngamestate": "star.positions.sngamestate:SnGameStateLocalizer",
}


@dataclass(frozen=True)
class HalfSource:
    """The inputs a backend may read for one half (each backend says which it needs)."""

    game: str                       # game id
    half: int
    frames: Path | None = None      # frames cache (classical)
    game_dir: Path | None = None    # game folder of the SoccerNet tree (Game State JSON)
    video: Path | None = None       # half video (sn-gamestate)
    work_dir: Path | None = None    # scratch space a backend may use
    length: int | None = None       # samples at positions.fps, when the caller knows it


@dataclass
class Detections:
    """People found in one sample, before packing into P slots."""

    xy: np.ndarray      # [k, 2] pitch metres
    team: np.ndarray    # [k] int8
    role: np.ndarray    # [k] int8
    jersey: np.ndarray | None = None   # [k] int8 shirt number, -1 unknown (None: all unknown)

    @classmethod
    def none(cls) -> Detections:
        return cls(np.zeros((0, 2), np.float32), np.zeros(0, np.int8), np.zeros(0, np.int8))


@dataclass
class Positions:
    xy: np.ndarray          # [N, P, 2] float32
    team: np.ndarray        # [N, P] int8
    role: np.ndarray        # [N, P] int8
    mask: np.ndarray        # [N, P] bool
    calibrated: np.ndarray  # [N] bool
    jersey: np.ndarray      # [N, P] int8, -1 unknown
    ball: np.ndarray        # [N, 2] float32 pitch metres of the ball's ground point (0 where not seen)
    ball_visible: np.ndarray  # [N] bool

    @classmethod
    def empty(cls, n: int, p: int) -> Positions:
        return cls(np.zeros((n, p, 2), np.float32), np.full((n, p), -1, np.int8), np.zeros((n, p), np.int8),
                   np.zeros((n, p), bool), np.zeros(n, bool), np.full((n, p), -1, np.int8),
                   np.zeros((n, 2), np.float32), np.zeros(n, bool))

    def __len__(self) -> int:
        return len(self.calibrated)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"xy": self.xy, "team": self.team, "role": self.role, "mask": self.mask, "calibrated": self.calibrated,
                "jersey": self.jersey, "ball": self.ball, "ball_visible": self.ball_visible}

    def put_ball(self, i: int, xy) -> None:
        """The ball's ground point in sample i (a calibrated sample; ignored when not finite)."""
        xy = np.asarray(xy, np.float32)
        if self.calibrated[i] and np.isfinite(xy).all():
            self.ball[i], self.ball_visible[i] = xy, True

    def put(self, i: int, found: Detections, centre=None) -> None:
        """Fill sample i (marked calibrated). More people than slots: keep the P nearest to `centre` (the centre
        of the visible area; the median of the detections when not given or not finite)."""
        self.calibrated[i] = True
        if not len(found.xy):
            return
        p = self.mask.shape[1]
        if centre is None or not np.isfinite(centre).all():
            centre = np.median(found.xy, axis=0)
        order = np.argsort(np.linalg.norm(found.xy - centre, axis=1), kind="stable")[:p]
        k = len(order)
        self.xy[i, :k] = found.xy[order]
        self.team[i, :k] = found.team[order]
        self.role[i, :k] = found.role[order]
        if found.jersey is not None:
            self.jersey[i, :k] = found.jersey[order]
        self.mask[i, :k] = True


ROLE_INDEX = {name: i for i, name in enumerate(ROLES)}


def samples_spanned(frames: int, frames_fps: float, fps: float) -> int:
    """Samples at `fps` spanned by `frames` frames at `frames_fps` (sample k stands for time k / fps)."""
    return int(np.floor((frames - 1) / frames_fps * fps + 1e-6)) + 1 if frames else 0


class Localizer(ABC):
    """One backend. `config` is the validated `positions` config section."""

    def __init__(self, config: dict):
        self.config = config
        self.fps = float(config["fps"])
        self.max_players = int(config["max_players"])

    @abstractmethod
    def localize(self, source: HalfSource) -> Positions:
        """Positions of one half at `self.fps`."""

    def sources(self, source: HalfSource) -> list[Path]:
        """Files whose checksums go into the cache's provenance."""
        return []


def get_localizer(config: dict) -> Localizer:
    """The backend named by `config["backend"]`, imported only when used."""
    module_name, class_name = BACKENDS[config["backend"]].split(":")
    return getattr(importlib.import_module(module_name), class_name)(config)
