"""Event chains (GRAMMAR.md): the timing of each kind of chain, the chains that fill a half, and their schedule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from star.world.squads import MAX_SUBS, Squads

ANCHOR_GAP = 8.0                # s, least time between two annotated events
OPEN_PLAY_GAP = 2.0             # s, least open play between two chains

# ---------------------------------------------------------------- chains and their schedule

@dataclass
class Chain:
    """One causal chain of events (GRAMMAR.md): its kind, acting team, and times relative to its start."""

    kind: str
    team: int
    times: dict[str, float]             # named moments, offsets from the start; "end" is the length
    anchors: tuple[str, ...]            # the moments that carry a caption
    options: dict = field(default_factory=dict)
    start: float = 0.0
    pace: float = 1.0                   # < 1 when the half was too short and the chain squeezed

    def at(self, key: str) -> float:
        return self.start + self.times[key]

    def span(self, seconds: float) -> float:
        """A duration inside the chain, squeezed with it."""
        return seconds * self.pace

    @property
    def length(self) -> float:
        return self.times["end"]


# Timing of each kind of chain: (uniform draw, options) -> (named moments, the moments that carry a caption).
# Each draws its moments in order from the half's generator, so a kind's timing never depends on the others'.
Timing = Callable[[Callable[..., float], dict], tuple[dict[str, float], tuple[str, ...]]]


def _kickoff(u, options):
    t = {"kick": u(2, 4)}
    t["end"] = t["kick"] + 1.5
    return t, ("kick",)


def _final(u, options):
    return {"whistle": 3.0, "end": 5.0}, ("whistle",)


def _goal(u, options):
    if options.get("how") == "corner":            # shot saved, corner, header in
        t = {"shot": u(5, 8)}
        t["corner"] = t["shot"] + u(16, 20)
        t["goal"] = t["corner"] + 1.6
    else:
        t = {"goal": u(5, 8)}
    t["restart"] = t["goal"] + u(16, 22)
    t["end"] = t["restart"] + 1.5
    return t, ("goal",)


def _penalty(u, options):
    t = {"foul": u(4, 6)}
    t["award"], t["kick"] = t["foul"] + 1.5, t["foul"] + u(20, 27)
    t["restart"] = t["kick"] + (u(18, 24) if options["scored"] else u(8, 10))
    t["end"] = t["restart"] + 3
    return t, ("award", "kick")


def _foul_corner(u, options):
    t = {"foul": u(3, 5)}
    t["free_kick"] = t["foul"] + u(9, 12)
    t["corner"] = t["free_kick"] + u(16, 19)
    t["end"] = t["corner"] + 9
    return t, (("foul", "corner") if options.get("whistle") else ("corner",))


def _shot_corner(u, options):
    t = {"shot": u(5, 8)}
    t["corner"] = t["shot"] + u(16, 21)
    t["end"] = t["corner"] + 9
    return t, (("shot", "corner") if options.get("comment") else ("corner",))


def _shot(u, options):
    t = {"shot": u(4, 7)}
    t["restart"] = t["shot"] + u(7, 10)
    t["end"] = t["restart"] + 3
    return t, ("shot",)


def _pressure(u, options):
    t = {"spell": u(20, 28)}
    t["end"] = t["spell"] + 2.5
    return t, ("spell",)


def _foul(u, options):
    t = {"foul": u(3, 5)}
    t["restart"] = t["foul"] + u(5, 8)
    t["end"] = t["restart"] + 3
    return t, ("foul",)


def _booking(u, options):
    t = {"foul": u(3, 5)}
    t["card"] = t["foul"] + u(9, 14)
    t["restart"] = t["card"] + u(3, 5)
    t["end"] = t["restart"] + 3
    return t, ("card",)


def _injury(u, options):
    t = {"foul": u(3, 5)}
    t["injury"] = t["foul"] + u(5, 8)
    t["restart"] = t["foul"] + u(26, 34)
    anchors = ("injury",)
    if options.get("sub"):
        t["sub"] = max(t["injury"] + 17, t["restart"] - 3)
        t["restart"] = t["sub"] + 3
        anchors = ("injury", "sub")
    t["end"] = t["restart"] + 3
    return t, anchors


def _substitution(u, options):
    t = {"sub": u(6, 9)}
    t["restart"] = t["sub"] + u(3, 5)
    t["end"] = t["restart"] + 3
    return t, ("sub",)


TIMINGS: dict[str, Timing] = {
    "kickoff": _kickoff, "final": _final, "goal": _goal, "own_goal": _goal, "penalty": _penalty,
    "foul_corner": _foul_corner, "shot_corner": _shot_corner, "shot": _shot, "pressure": _pressure, "foul": _foul,
    "booking": _booking, "injury": _injury, "substitution": _substitution,
}


def plan_chain(rng: np.random.Generator, kind: str, team: int, **options) -> Chain:
    """Draw the timing of a chain. Moments are spaced so that what a later caption refers to lies > 15 s back."""
    if kind not in TIMINGS:
        raise ValueError(f"unknown chain kind {kind!r}")
    times, anchors = TIMINGS[kind](rng.uniform, options)
    return Chain(kind, team, times, anchors, options)


# Chains that fill a half around the goals, substitutions and whistles, with their odds.
OPTIONAL = {"shot": 0.2, "shot_corner": 0.16, "foul_corner": 0.13, "pressure": 0.12, "foul": 0.12,
            "booking": 0.13, "injury": 0.07, "penalty_missed": 0.03, "substitution": 0.04}


def _goal_chain(rng: np.random.Generator, team: int) -> Chain:
    r = rng.random()
    if r < 0.1:
        return plan_chain(rng, "penalty", team, scored=True)
    if r < 0.17:
        return plan_chain(rng, "own_goal", team)
    how = str(rng.choice(["shot", "long_shot", "header", "corner"], p=[0.45, 0.2, 0.2, 0.15]))
    return plan_chain(rng, "goal", team, how=how)


def plan_half(rng: np.random.Generator, squads: Squads, half: int, goals: tuple[int, int], world: dict,
              kicks_off: int) -> list[Chain]:
    """The chains of one half with their start times: the whistles and the planned goals always, then
    substitutions (after the break) and optional chains while the annotation budget (duration /
    event_interval_s) and the time last."""
    duration = float(world["half_duration_s"])
    budget = max(2, round(duration / world["event_interval_s"]))
    must = [_goal_chain(rng, team) for team in (0, 1) for _ in range(goals[team])]
    subs_left = [min(MAX_SUBS - squads.subs[t], len(squads.bench(t))) for t in (0, 1)]
    wanted = []
    if half == 2:
        wanted = [("substitution", team) for team in (0, 1) for _ in range(int(rng.integers(1, 3)))]
    room = duration - sum(c.length for c in must) - 10.0 - OPEN_PLAY_GAP * (len(must) + 1)
    anchors = 2 + sum(len(c.anchors) for c in must)
    extra: list[Chain] = []
    for attempt in range(60):
        if anchors >= budget:
            break
        if attempt < len(wanted):
            kind, team = wanted[attempt]
        else:
            kind, team = str(rng.choice(list(OPTIONAL), p=list(OPTIONAL.values()))), int(rng.integers(2))
        options = {}
        if kind == "penalty_missed":
            kind, options = "penalty", {"scored": False}
        elif kind == "substitution" and subs_left[team] == 0:
            continue
        elif kind == "injury":
            options = {"sub": subs_left[team] > 0 and rng.random() < 0.5}
        elif kind == "foul_corner":
            options = {"whistle": rng.random() < 0.6}
        elif kind == "shot_corner":
            options = {"comment": rng.random() < 0.7}
        chain = plan_chain(rng, kind, team, **options)
        if chain.length + OPEN_PLAY_GAP <= room and anchors + len(chain.anchors) <= budget + 1:
            extra.append(chain)
            room -= chain.length + OPEN_PLAY_GAP
            anchors += len(chain.anchors)
            subs_left[team] -= kind == "substitution" or bool(options.get("sub"))
    middle = must + extra
    order = rng.permutation(len(middle))
    chains = [plan_chain(rng, "kickoff", kicks_off)] + [middle[i] for i in order] + [plan_chain(rng, "final", 0)]
    schedule(rng, chains, 0.0, duration)
    return chains


def schedule(rng: np.random.Generator, chains: list[Chain], start: float, end: float) -> None:
    """Set start times in [start, end]: chains in order, open play between them, annotated moments at least
    ANCHOR_GAP apart, the last chain ending at `end`. If they cannot fit, every chain's timing is squeezed by
    the same factor (only many planned goals in a short half force that)."""
    def least_gaps(pace: float) -> np.ndarray:
        tails = [pace * (c.length - max(c.times[k] for k in c.anchors)) for c in chains[:-1]]
        heads = [pace * min(c.times[k] for k in c.anchors) for c in chains[1:]]
        return np.maximum(OPEN_PLAY_GAP, ANCHOR_GAP - np.array(tails) - np.array(heads))

    room, busy = end - start, sum(c.length for c in chains)
    pace, low = 1.0, 0.05
    if busy + least_gaps(1.0).sum() > room:
        high = 1.0
        for _ in range(30):
            pace = (low + high) / 2
            low, high = (pace, high) if pace * busy + least_gaps(pace).sum() <= room else (low, pace)
        pace = low
        for c in chains:
            c.times, c.pace = {k: v * pace for k, v in c.times.items()}, c.pace * pace
    gaps = least_gaps(1.0)
    spare = room - sum(c.length for c in chains) - gaps.sum()
    if spare >= 0:
        gaps = gaps + spare * rng.dirichlet(np.full(len(gaps), 2.0))
    else:    # not even squeezed chains fit: shorten the open play between them
        gaps = gaps * max(0.0, 1 + spare / max(gaps.sum(), 1e-9))
    for chain, gap in zip(chains, [*gaps, 0.0], strict=True):
        chain.start = start
        start += chain.length + gap

