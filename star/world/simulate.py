"""Simulate a synthetic match: lineups, possession play, causal event chains and the broadcast direction.

A half is first written as a *script*: event chains (GRAMMAR.md) laid out in time with open play between them.
Scripting lays down the ball's plan (dribbles, passes, kicks, dead balls) and target overrides for the players a
chain involves (set-piece positions, runs, celebrations, walking off). Then every player chases a target (the
team shape shifted toward the ball, or his override) with a capped speed, and the ball is re-anchored to the
feet of whoever carries, passes or receives it: events play out in the positions.

Modules: `squads` (lineups, kits, the team shape), `chains` (each chain kind's timing, the chains of a half, their
schedule), `script` (the half's script and its realisation as tracks), `builders` (one builder per chain kind).

Frames: the pitch frame of `star.geometry.pitch` (x along the pitch, +y the near touchline). A *team frame* has the
team attacking +x with its left wing at +y: world = (d * x, -d * y), d = +1 for the team defending the left goal.
"""

from __future__ import annotations

import numpy as np

from star.world.builders import BUILDERS
from star.world.chains import plan_half, schedule
from star.world.match import HalfTrack, Match
from star.world.plan import CLUBS, PlannedGame
from star.world.script import HalfScript
from star.world.squads import Squads, make_kits, make_squads


def simulate_half(rng: np.random.Generator, squads: Squads, half: int, goals: tuple[int, int], world: dict,
                  left_team: int, kicks_off: int) -> HalfTrack:
    duration = float(world["half_duration_s"])
    chains = plan_half(rng, squads, half, goals, world, kicks_off)
    script = HalfScript(rng, squads, half, duration, left_team)
    for k, chain in enumerate(chains):
        if script.t > chain.start:    # the last chain ran long: fit the rest into what is left
            schedule(rng, chains[k:], script.t, duration)
        script.open_play(chain.start)
        BUILDERS[chain.kind](script, chain)
    script.rest(duration)
    return script.realize()


def simulate_match(planned: PlannedGame, world: dict) -> Match:
    """Play `planned` to its planned score per half; deterministic given `planned.seed`."""
    rng = np.random.default_rng([planned.seed, 11])
    squads, coaches = make_squads(rng)
    left_first, kicks_first = int(rng.integers(2)), int(rng.integers(2))
    halves = []
    for half, goals in enumerate(planned.goals, start=1):
        second = half == 2
        halves.append(simulate_half(rng, squads, half, goals, world, left_team=left_first ^ second,
                                    kicks_off=kicks_first ^ second))
        scored = tuple(sum(g[t] for g in planned.goals[:half]) for t in (0, 1))
        assert tuple(squads.score) == scored, f"half {half} ended {squads.score}, planned {scored}"
    return Match(teams=(CLUBS[planned.home][0], CLUBS[planned.away][0]), kits=make_kits(planned), coaches=coaches,
                 people=squads.people, halves=halves, kickoff=planned.kickoff, score=tuple(squads.score))
