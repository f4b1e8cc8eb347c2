"""Chain builders: each kind of event chain (GRAMMAR.md) written into a half's script at its planned times."""

from __future__ import annotations

import numpy as np

from star.geometry.pitch import HALF_L, HALF_W, PENALTY_SPOT
from star.world.chains import Chain
from star.world.script import HalfScript
from star.world.squads import clip_pitch

# ---------------------------------------------------------------- chain builders

def build_kickoff(s: HalfScript, c: Chain) -> None:
    team = c.team
    kick = c.at("kick")
    kicker = s.kickoff_setup(s.t, kick, team)
    s.rest(kick, at=(0.0, 0.0))
    s.event(kick, "kickoff", team, [kicker], label="whistle", score=list(s.squads.score))
    s.carrier = kicker
    mate = s.pick(team, "mid", exclude=[kicker])
    s.pass_to(mate, s.spot(team, -9, s.rng.uniform(-6, 6)), duration=c.span(1.2))


def build_final(s: HalfScript, c: Chain) -> None:
    whistle = min(c.at("whistle"), s.duration - 0.5)
    s.open_play(whistle)
    s.event(whistle, "half_end", None, [], label="whistle", score=list(s.squads.score))
    s.rest(s.duration)


def _finish_goal(s: HalfScript, c: Chain, team: int, scorer: int, scored_at: float) -> None:
    """Ball in the net, replay, celebration, then kick-off by the other side."""
    back = scored_at + c.span(11.0)
    s.rest(back)
    s.cut(scored_at + c.span(0.6), c.span(1.4), "closeup", "goal_net", team, priority=5)
    s.cut(scored_at + c.span(2.0), c.span(5.0), "replay", priority=5)
    s.cut(scored_at + c.span(8.0), c.span(3.0), "closeup", "celebration", team, scorer, priority=5)
    s.celebrate(scored_at + c.span(0.8), back, team, scorer)
    restart = c.at("restart")
    kicker = s.kickoff_setup(back, restart, 1 - team)
    s.rest(restart, at=(0.0, 0.0))
    s.event(restart, "kickoff", 1 - team, [kicker])
    s.carrier = kicker
    s.pass_to(s.pick(1 - team, "mid", exclude=[kicker]), s.spot(1 - team, -9, s.rng.uniform(-6, 6)),
              duration=c.span(1.2))


def _net_point(s: HalfScript, team: int) -> tuple[np.ndarray, float, float]:
    """A spot inside the goal `team` attacks; (world point, lateral y in the team frame, height)."""
    y = float(s.rng.uniform(-3.2, 3.2))
    height = float(s.rng.uniform(0.15, 0.6) if s.rng.random() < 0.5 else s.rng.uniform(1.5, 2.2))
    return s.spot(team, HALF_L + 1.0, y), y, height


def _score(s: HalfScript, team: int) -> list[int]:
    s.squads.score[team] += 1
    return list(s.squads.score)


def build_goal(s: HalfScript, c: Chain) -> None:
    team, rng, how = c.team, s.rng, c.options["how"]
    keeper = s.keeper(1 - team)
    cause, assist = None, None
    header_spot = s.spot(team, rng.uniform(45, 48.5), rng.uniform(-5, 5))
    if how == "corner":
        save = _saved_shot(s, c, team, comment=False)
        assist, cause = _corner(s, c, team, save, label=None)
        scorer = s.pick(team, "def", "att", exclude=[assist])
        s.pass_to(scorer, header_spot, duration=max(0.5, c.at("goal") - s.t), peak=rng.uniform(4, 5.5), h1=2.0)
    elif how == "header":
        side = int(rng.choice([-1, 1]))
        assist = s.build_up(team, s.spot(team, rng.uniform(36, 46), side * rng.uniform(23, 31)),
                            c.at("goal") - c.span(1.3), lines=("mid", "att", "def"), side=side)
        cause = s.event(s.t, "cross", team, [assist])
        scorer = s.pick(team, "att", exclude=[assist])
        s.pass_to(scorer, header_spot, duration=c.span(1.3), peak=rng.uniform(4, 5.5), h1=2.0)
    else:
        back = rng.uniform(7, 16) if how == "shot" else rng.uniform(20, 27)
        scorer = s.build_up(team, s.spot(team, HALF_L - back, rng.uniform(-10, 10)), c.at("goal"))
        assist = next((seg.src for seg in reversed(s.segs) if seg.dst == scorer and seg.src >= 0
                       and s.team_of[seg.src] == team), None)
    goal = s.t
    point, lateral, height = _net_point(s, team)
    s.kick(point, duration=max(0.4, float(np.linalg.norm(point - s.ball)) / 25), peak=0.3, h1=height)
    s.hold(goal, goal + 1.0, keeper, s.spot(1 - team, -HALF_L + 0.5, -lateral + rng.choice([-1.5, 1.5])))
    s.event(goal, "goal", team, [p for p in (scorer, assist, keeper) if p is not None], cause=cause,
            label="soccer-ball", how=how, score=_score(s, team), assist=assist,
            placement=[round(lateral, 2), round(height, 2)])
    _finish_goal(s, c, team, scorer, goal)


def build_own_goal(s: HalfScript, c: Chain) -> None:
    """`c.team` benefits: its cross is turned into his own net by a defender."""
    team, rng = c.team, s.rng
    side = int(rng.choice([-1, 1]))
    crosser = s.build_up(team, s.spot(team, rng.uniform(36, 46), side * rng.uniform(22, 30)),
                         c.at("goal") - c.span(1.2), lines=("mid", "att", "def"), side=side)
    cross = s.event(s.t, "cross", team, [crosser])
    defender = s.pick(1 - team, "def")
    s.pass_to(defender, s.spot(team, rng.uniform(46, 50), rng.uniform(-4, 4)), duration=c.span(1.2), peak=3.0, h1=1.0)
    goal = s.t
    point, _, height = _net_point(s, team)
    s.kick(point, 0.5, peak=0.2, h1=height)
    s.event(goal, "own_goal", 1 - team, [defender, crosser], cause=cross, label="soccer-ball-own", where=defender,
            score=_score(s, team))
    _finish_goal(s, c, team, crosser, goal)


def build_penalty(s: HalfScript, c: Chain) -> None:
    team, rng = c.team, s.rng
    spot_foul = s.spot(team, rng.uniform(40, 48), rng.uniform(-12, 12))
    fouled = s.build_up(team, spot_foul, c.at("foul"))
    foul_t, kick_t = s.t, c.at("kick")
    defender = s.nearest(1 - team, spot_foul)
    s.move(foul_t - 1.0, foul_t, defender, spot_foul + rng.normal(0, 0.5, 2))
    foul = s.event(foul_t, "foul", 1 - team, [defender, fouled])
    s.hold(foul_t, foul_t + c.span(3.0), fouled, spot_foul)
    award_t = max(c.at("award"), foul_t + 0.5)
    s.rest(award_t)
    award = s.event(award_t, "penalty_awarded", team, [fouled, defender], cause=foul, label="penalty",
                    where=fouled)
    setup = foul_t + c.span(6.0)
    s.rest(setup)
    taker = s.pick(team, "att", "mid")
    s.penalty_setup(setup, kick_t, team, taker)
    s.rest(kick_t, at=s.spot(team, HALF_L - PENALTY_SPOT, 0.0))
    s.cut(setup + c.span(0.5), c.span(3.0), "closeup", "player", team, taker, priority=2)
    s.carrier = taker
    keeper = s.keeper(1 - team)
    if c.options["scored"]:
        point, lateral, height = _net_point(s, team)
        s.hold(kick_t, kick_t + 0.8, keeper, s.spot(1 - team, -HALF_L + 0.5, lateral + rng.choice([-2.5, 2.5])))
        s.kick(point, 0.5, peak=0.2, h1=height)
        s.event(kick_t, "penalty", team, [taker, keeper], cause=award, label="soccer-ball",
                scored=True, score=_score(s, team), placement=[round(lateral, 2), round(height, 2)])
        _finish_goal(s, c, team, taker, kick_t)
        return
    outcome = str(rng.choice(["saved", "wide", "over"]))
    s.event(kick_t, "penalty", team, [taker, keeper], cause=award, label="penalty-missed",
            scored=False, outcome=outcome)
    s.cut(kick_t + c.span(2.0), c.span(4.0), "replay", priority=4)
    if outcome == "saved":
        lateral = float(rng.choice([-2.0, 2.0]))
        s.kick(s.spot(team, HALF_L - 0.5, lateral), 0.5, peak=0.4, h1=0.8, dst=keeper)
        s.kick(s.spot(team, rng.uniform(40, 46), np.sign(lateral) * rng.uniform(10, 16)), 0.8, peak=1.5)
        s.open_play(c.at("restart"))
    else:
        y = rng.uniform(4.5, 6) * rng.choice([-1, 1]) if outcome == "wide" else rng.uniform(-3, 3)
        s.kick(s.spot(team, HALF_L + 3.5, y), 0.7, peak=1.0 if outcome == "wide" else 5.5)
        s.goal_kick(1 - team, c.at("restart"), c.span(4.0))


def _foul(s: HalfScript, c: Chain, team: int, x_range, wide: bool = False) -> tuple[int, int, np.ndarray]:
    """`team`'s player on the ball is fouled at about c.at('foul') (moved to when it really happens);
    returns (fouled, fouler, spot)."""
    rng = s.rng
    side = float(rng.uniform(12, 28) if wide else rng.uniform(-28, 28)) * rng.choice([-1, 1])
    spot = s.spot(team, rng.uniform(*x_range), side)
    fouled = s.build_up(team, spot, c.at("foul"), lines=("mid", "att"))
    c.times["foul"] = s.t - c.start
    at = s.t
    fouler = s.nearest(1 - team, spot)
    s.move(at - 1.0, at, fouler, spot + rng.normal(0, 0.5, 2))
    s.hold(at, at + c.span(2.5), fouled, spot)
    s.hold(at, at + c.span(3.0), fouler, spot + rng.normal(0, 1.0, 2))
    return fouled, fouler, spot


def build_foul(s: HalfScript, c: Chain) -> None:
    team = c.team
    fouled, fouler, _ = _foul(s, c, team, (-20, 35))
    s.event(c.at("foul"), "foul", 1 - team, [fouler, fouled], label="whistle")
    if s.rng.random() < 0.15:    # the director is still showing the last attack again: the foul is not shown
        s.cut(c.at("foul") - c.span(1.0), c.span(4.0), "replay", priority=2)
    s.restart(team, c.at("restart"))


def build_booking(s: HalfScript, c: Chain) -> None:
    team, rng = c.team, s.rng
    booked_on = sorted(p for p in s.squads.booked if p in s.squads.on and s.team_of[p] == 1 - team)
    fouled, fouler, spot = _foul(s, c, team, (-25, 35))
    if booked_on and rng.random() < 0.4:
        fouler = int(rng.choice(booked_on))
    foul = s.event(c.at("foul"), "foul", 1 - team, [fouler, fouled])
    card_t = max(c.at("card"), s.t + 1.0)
    s.rest(card_t)
    referee = next(p for p in s.squads.on if s.team_of[p] < 0)
    s.hold(card_t - c.span(4.0), card_t + 1.0, fouler, spot + s.local(team, (1.5, 1.0)))
    s.hold(card_t - c.span(3.0), card_t + 1.5, referee, spot + s.local(team, (1.5, 2.5)))
    if fouler in s.squads.booked:
        kind, label, cue = "second_yellow", "yr-card", "red_card"
    elif rng.random() < 0.08:
        kind, label, cue = "red_card", "r-card", "red_card"
    else:
        kind, label, cue = "yellow_card", "y-card", "yellow_card"
    s.event(card_t, kind, 1 - team, [fouler, fouled], cause=foul, label=label, where=fouler)
    s.cut(card_t - c.span(0.5), c.span(3.5), "closeup", cue, 1 - team, fouler, priority=4)
    s.squads.booked.add(fouler)
    if kind != "yellow_card":
        s.leave(card_t + 1.5, min(s.duration, card_t + 14.0), fouler)
    s.restart(team, c.at("restart"))


def build_injury(s: HalfScript, c: Chain) -> None:
    team = c.team
    hurt, fouler, spot = _foul(s, c, team, (-25, 40))
    foul = s.event(c.at("foul"), "foul", 1 - team, [fouler, hurt])
    s.rest(c.at("restart"))
    sub = "sub" in c.times
    s.hold(c.at("foul"), c.at("sub") - c.span(9.0) if sub else c.at("restart") - c.span(2.0), hurt, spot)
    injury = s.event(c.at("injury"), "injury", team, [hurt, fouler], cause=foul, label="injury", where=hurt)
    s.cut(c.at("injury") - c.span(1.0), c.span(4.0), "closeup", "injury", team, hurt, priority=4)
    if sub:
        _substitute(s, c, team, c.at("sub"), hurt, cause=injury)
    s.restart(team, c.at("restart"))


def _substitute(s: HalfScript, c: Chain, team: int, at: float, leaving: int, cause: int | None = None) -> None:
    entering = int(s.rng.choice(s.squads.bench(team)))
    s.leave(at - c.span(9.0), at, leaving)
    s.enter(at, leaving, entering)
    s.squads.subs[team] += 1
    s.event(at, "substitution", team, [leaving, entering], cause=cause, label="substitution", where=entering,
            count=s.squads.subs[team], score=list(s.squads.score))
    s.cut(at - c.span(1.0), c.span(4.0), "closeup", "substitution", team, entering, priority=4)


def build_substitution(s: HalfScript, c: Chain) -> None:
    team, rng = c.team, s.rng
    leaving = s.pick(team, "att", "mid") if rng.random() < 0.8 else s.pick(team, "def")
    touchline = (1.0 if s.ball[1] >= 0 else -1.0) * (HALF_W + 1.0)
    s.kick((s.ball[0], touchline), c.span(1.2), peak=1.0)   # out for a throw-in
    s.rest(c.at("sub"))
    _substitute(s, c, team, c.at("sub"), leaving)
    s.restart(int(rng.integers(2)), c.at("restart"))


def build_pressure(s: HalfScript, c: Chain) -> None:
    team = c.team
    s.open_play(c.at("spell"), team=team, region=(17.5, 46.0))
    s.event(c.at("spell"), "pressure", team, [], label="comments", since=round(float(c.start), 2))
    defender = s.nearest(1 - team, s.ball)
    s.pass_to(defender, clip_pitch(s.ball + s.rng.normal(0, 1.0, 2), 2.0), duration=c.span(0.5))
    clear = s.spot(1 - team, s.rng.uniform(-5, 10), s.rng.uniform(-25, 25))
    s.kick(clear, max(c.span(1.6), float(np.linalg.norm(clear - s.ball)) / 22), peak=9.0)


def _shot_spot(s: HalfScript, team: int) -> np.ndarray:
    back = s.rng.uniform(9, 17) if s.rng.random() < 0.5 else s.rng.uniform(19, 30)
    return s.spot(team, HALF_L - back, s.rng.uniform(-12, 12))


def _saved_shot(s: HalfScript, c: Chain, team: int, comment: bool) -> int:
    """A shot at c.at('shot') tipped behind by the keeper; the ball lies past the goal line. Returns the save."""
    rng = s.rng
    shooter = s.build_up(team, _shot_spot(s, team), c.at("shot"))
    at = s.t
    keeper = s.keeper(1 - team)
    lateral = float(rng.uniform(-3, 3))
    point = s.spot(team, HALF_L - 0.6, lateral)
    shot = s.event(at, "shot", team, [shooter, keeper], label="comments" if comment else None, outcome="saved")
    s.kick(point, max(0.5, float(np.linalg.norm(point - s.ball)) / 24), peak=rng.uniform(0.5, 1.5),
           h1=rng.uniform(0.4, 2.0), dst=keeper)
    save = s.event(s.t, "save", 1 - team, [keeper, shooter], cause=shot, where=keeper)
    s.kick(s.spot(team, HALF_L + rng.uniform(1, 3), np.sign(lateral or 1) * rng.uniform(6, 12)), c.span(0.8),
           peak=2.0)
    s.cut(at + c.span(2.0), c.span(5.0), "replay", priority=3)
    return save


def _corner(s: HalfScript, c: Chain, team: int, cause: int, label: str | None = "corner") -> tuple[int, int]:
    """A corner for `team` from the side the ball went out, taken at c.at('corner'); returns (taker, event)."""
    at = c.at("corner")
    side = np.sign(s.local(team, s.ball)[1]) or 1.0
    flag = s.spot(team, HALF_L - 0.4, side * (HALF_W - 0.4))
    taker = s.pick(team, "mid", "att", side=int(side))
    s.rest(at - c.span(12.0))
    s.kick(flag, float(np.clip(at - c.span(1.0) - s.t, 0.3, 3.0)), peak=1.5)   # a ball boy throws it to the flag
    s.box_setup(at - c.span(9.0), at, team, taker, flag)
    s.rest(at)
    s.carrier = taker
    corner = s.event(at, "corner", team, [taker], cause=cause, label=label)
    return taker, corner


def _corner_outcome(s: HalfScript, c: Chain, team: int, corner: int) -> None:
    """The delivery: headed clear by a defender, caught by the keeper or headed wide by an attacker."""
    rng = s.rng
    landing = s.spot(team, rng.uniform(44, 49), rng.uniform(-6, 6))
    outcome = str(rng.choice(["cleared", "caught", "wide"], p=[0.55, 0.25, 0.2]))
    s.events[corner].detail["outcome"] = outcome
    if outcome == "caught":
        keeper = s.keeper(1 - team)
        s.kick(s.spot(team, HALF_L - 3, rng.uniform(-3, 3)), c.span(1.4), peak=5.0, h1=2.2, dst=keeper)
        s.rest(s.t + c.span(2.0))
        s.carrier = keeper
        s.pass_to(s.pick(1 - team, "def"), s.spot(1 - team, -30, rng.choice([-1, 1]) * 25))
    elif outcome == "cleared":
        s.pass_to(s.pick(1 - team, "def"), landing, duration=c.span(1.4), peak=5.0, h1=2.0)
        s.kick(s.spot(team, rng.uniform(5, 20), rng.uniform(-20, 20)), c.span(1.5), peak=8.0)
    else:
        s.pass_to(s.pick(team, "def", "att", exclude=[s.carrier]), landing, duration=c.span(1.4), peak=5.0, h1=2.0)
        s.kick(s.spot(team, HALF_L + 3, rng.choice([-1, 1]) * rng.uniform(4.5, 8)), c.span(0.9), peak=1.0)
        s.goal_kick(1 - team, s.t + c.span(4.5), c.span(4.0))


def build_shot_corner(s: HalfScript, c: Chain) -> None:
    save = _saved_shot(s, c, c.team, comment=c.options.get("comment", False))
    _, corner = _corner(s, c, c.team, save)
    _corner_outcome(s, c, c.team, corner)


def build_foul_corner(s: HalfScript, c: Chain) -> None:
    """Foul -> free kick swung into the box -> headed behind -> corner."""
    team, rng = c.team, s.rng
    fouled, fouler, spot = _foul(s, c, team, (15, 32), wide=rng.random() < 0.7)
    foul = s.event(c.at("foul"), "foul", 1 - team, [fouler, fouled],
                   label="whistle" if c.options.get("whistle") else None)
    fk_t = c.at("free_kick")
    taker = s.pick(team, "mid", "att", "def")
    s.rest(fk_t)
    s.box_setup(c.at("foul") + c.span(3.0), fk_t, team, taker, spot)
    s.wall(c.at("foul") + c.span(3.0), fk_t, team, spot)
    s.carrier = taker
    free_kick = s.event(fk_t, "free_kick", team, [taker], cause=foul, delivery="cross")
    defender = s.pick(1 - team, "def")
    s.pass_to(defender, s.spot(team, rng.uniform(44, 49), rng.uniform(-6, 6)), duration=c.span(1.4), peak=4.5,
              h1=2.0)
    clearance = s.event(s.t, "clearance", 1 - team, [defender], cause=free_kick, where=defender)
    s.kick(s.spot(team, HALF_L + rng.uniform(1, 3), rng.choice([-1, 1]) * rng.uniform(8, 20)), c.span(1.2), peak=3.0)
    _, corner = _corner(s, c, team, clearance)
    _corner_outcome(s, c, team, corner)


def build_shot(s: HalfScript, c: Chain) -> None:
    team, rng = c.team, s.rng
    shooter = s.build_up(team, _shot_spot(s, team), c.at("shot"))
    at = s.t
    keeper = s.keeper(1 - team)
    outcome = str(rng.choice(["wide", "over", "held"], p=[0.45, 0.3, 0.25]))
    s.event(at, "shot", team, [shooter, keeper], label="comments", outcome=outcome)
    dist = float(np.linalg.norm(s.spot(team, HALF_L, 0) - s.ball))
    if outcome == "held":
        s.kick(s.spot(team, HALF_L - 0.8, rng.uniform(-2, 2)), max(0.5, dist / 24), peak=0.6, h1=1.0, dst=keeper)
        s.event(s.t, "save", 1 - team, [keeper, shooter], where=keeper)
        s.rest(s.t + c.span(3.0))
        s.carrier = keeper
        s.pass_to(s.pick(1 - team, "def"), s.spot(1 - team, -32, rng.choice([-1, 1]) * 24))
        return
    y = rng.uniform(4.5, 9) * rng.choice([-1, 1]) if outcome == "wide" else rng.uniform(-3, 3)
    s.kick(s.spot(team, HALF_L + 4, y), max(0.5, dist / 24), peak=1.0 if outcome == "wide" else 5.5)
    s.goal_kick(1 - team, c.at("restart"), c.span(4.0))


BUILDERS = {
    "kickoff": build_kickoff, "final": build_final, "goal": build_goal, "own_goal": build_own_goal,
    "penalty": build_penalty, "foul_corner": build_foul_corner, "shot_corner": build_shot_corner,
    "shot": build_shot, "pressure": build_pressure, "foul": build_foul, "booking": build_booking,
    "injury": build_injury, "substitution": build_substitution,
}

