"""The fixture list of the synthetic world: which games, their folders, and their final scores.

Planning is cheap and needs no rendering, so Snakemake knows every game (and its id) when it builds the DAG.
The simulation then plays each game to exactly the planned score per half.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

LEAGUE = "synthetic_league"
SEASON = "2030-2031"

# (name, home kit RGB, away kit RGB): kits keep clear of pitch green, line white and the referee's black.
CLUBS = (
    ("Northbridge Rovers", (200, 30, 40), (250, 200, 40)),
    ("Eastport City", (40, 80, 200), (240, 120, 30)),
    ("Westmoor United", (150, 20, 150), (90, 200, 230)),
    ("Southvale Athletic", (240, 120, 30), (40, 80, 200)),
    ("Kingsford Albion", (250, 200, 40), (150, 20, 150)),
    ("Harrowgate Town", (90, 200, 230), (200, 30, 40)),
    ("Millbrook Wanderers", (230, 90, 160), (40, 80, 200)),
    ("Ravenscar FC", (120, 70, 30), (250, 200, 40)),
)


@dataclass(frozen=True)
class PlannedGame:
    path: str                         # <league>/<season>/<date - time Home h - a Away>
    split: str
    index: int
    home: int                         # index into CLUBS
    away: int
    goals: tuple[tuple[int, int], ...]  # (home, away) goals scored in each half
    kickoff: str                      # "YYYY-MM-DD - HH-MM"
    seed: int


def plan_games(world: dict, seed: int) -> list[PlannedGame]:
    """Deterministic fixtures for a validated `world` config section."""
    rng = np.random.default_rng([seed, 7_001])
    counts = world["games"]
    total = sum(counts[s] for s in ("train", "valid", "test"))
    splits = [s for s in ("train", "valid", "test") for _ in range(counts[s])]
    start = dt.date(2030, 8, 10)
    games = []
    for i in range(total):
        home, away = (int(x) for x in rng.choice(len(CLUBS), size=2, replace=False))
        goals = tuple((int(rng.poisson(0.8)), int(rng.poisson(0.6))) for _ in range(2))
        day = start + dt.timedelta(days=int(3 * i + rng.integers(0, 3)))
        hour = int(rng.choice([13, 15, 17, 20]))
        kickoff = f"{day.isoformat()} - {hour:02d}-00"
        h, a = sum(g[0] for g in goals), sum(g[1] for g in goals)
        folder = f"{kickoff} {CLUBS[home][0]} {h} - {a} {CLUBS[away][0]}"
        games.append(PlannedGame(
            path=f"{LEAGUE}/{SEASON}/{folder}", split=splits[i], index=i, home=home, away=away,
            goals=goals, kickoff=kickoff, seed=int(rng.integers(0, 2**31 - 1)),
        ))
    return games
