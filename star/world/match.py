"""The data model of a simulated match: what the simulation produces and the renderer, the commentary and the
SoccerNet writers consume. Positions are in the pitch frame of `star.geometry.pitch` (metres, +y near touchline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Person:
    id: int                 # index into Match.people
    name: str
    team: int               # 0 home, 1 away, -1 referee
    role: str               # "player", "goalkeeper" or "referee" (Game State roles)
    shirt: int              # shirt number (0 for the referee)
    starter: bool           # in the starting eleven


@dataclass(frozen=True)
class Kit:
    shirt: tuple[int, int, int]     # RGB
    shorts: tuple[int, int, int]
    goalkeeper: tuple[int, int, int]


@dataclass
class Event:
    """Something that happens in the match. Annotated events (label set) become captions."""

    time: float                      # seconds of video time inside the half
    kind: str                        # internal kind, see GRAMMAR.md (foul, free_kick, cross, corner, shot, ...)
    team: int | None                 # acting team (0 home, 1 away)
    players: tuple[int, ...] = ()    # person ids, main actor first
    xy: tuple[float, float] = (0.0, 0.0)   # where on the pitch it happens
    cause: int | None = None         # index (in HalfTrack.events) of the event that led to this one
    label: str | None = None         # SoccerNet caption label when annotated, else None
    visibility: str = "visible"      # "visible" or "not shown"
    important: bool = False
    detail: dict = field(default_factory=dict)   # kind-specific facts the commentary may use
    anonymized: str = ""             # caption with [PLAYER]/[TEAM]/[REFEREE]/[COACH]
    identified: str = ""             # the same caption with names
    recalls: dict | None = None      # what the caption recalls from earlier (star.world.commentary.recalled_facts)


@dataclass(frozen=True)
class Shot:
    """A stretch of the broadcast: the main camera following play, or a cut away from it."""

    start: float
    end: float
    view: str                        # "main", "closeup" or "replay"
    cue: str | None = None           # what a cut shows: yellow_card, red_card, substitution, celebration,
                                     # injury, goal_net, player, crowd
    team: int | None = None
    subject: int | None = None       # person id shown


@dataclass
class HalfTrack:
    half: int
    duration: float                  # seconds of video
    rate: float                      # samples per second of the tracks
    xy: np.ndarray                   # [N, len(people), 2] float32; NaN when the person is off the pitch
    ball: np.ndarray                 # [N, 3] float32: x, y, height above ground (m, >= 0)
    events: list[Event]
    shots: list[Shot]
    left_team: int                   # the team defending the left goal (x < 0) in this half

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.xy.shape[0]) / self.rate

    def sample(self, t: float) -> int:
        return int(np.clip(round(t * self.rate), 0, self.xy.shape[0] - 1))


@dataclass
class Match:
    teams: tuple[str, str]           # home, away club names
    kits: tuple[Kit, Kit]
    coaches: tuple[str, str]
    people: list[Person]             # both squads (starters and substitutes) and the referee
    halves: list[HalfTrack]
    kickoff: str                     # "YYYY-MM-DD - HH-MM"
    score: tuple[int, int]           # final

    def squad(self, team: int) -> list[Person]:
        return [p for p in self.people if p.team == team]
