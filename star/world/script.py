"""The script of a half: the ball's plan, target overrides, events and cuts that chain builders write, and
`HalfScript.realize`, which turns them into tracks (every player chases his target, the ball is re-anchored to
the feet of whoever carries, passes or receives it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from star.geometry.pitch import HALF_L, HALF_W, PENALTY_SPOT
from star.world.match import Event, HalfTrack, Shot
from star.world.squads import RATE, Squads, chase, clip_pitch, shape_targets, team_frame, wander

BENCH = np.array([0.0, HALF_W + 1.0])   # where players leave and enter: the near touchline at halfway

# ---------------------------------------------------------------- the script of a half

@dataclass
class Seg:
    """A stretch of the ball's plan: a dribble (carrier), a flight (src -> dst) or a dead ball (neither)."""

    t0: float
    t1: float
    a: np.ndarray
    b: np.ndarray
    team: int = -1                      # possession (-1: dead or loose ball)
    placed: bool = False                # a dead ball put down by hand at `a` (else it starts where it was)
    carrier: int = -1
    src: int = -1                       # a flight starts at this person's feet ...
    dst: int = -1                       # ... and ends at this one's
    peak: float = 0.0                   # apex above the straight line (m)
    h0: float = 0.0                     # height at start and end (m)
    h1: float = 0.0


@dataclass
class Move:
    """A target override: `person` heads from a to b over [t0, t1]; a None starts from his target at t0."""

    t0: float
    t1: float
    person: int
    a: np.ndarray | None
    b: np.ndarray


class HalfScript:
    """Writes one half: the ball's plan, target overrides, events and cuts; `realize` turns it into tracks."""

    def __init__(self, rng: np.random.Generator, squads: Squads, half: int, duration: float, left_team: int):
        self.rng, self.squads, self.half, self.duration = rng, squads, half, duration
        self.left_team = left_team
        self.dirs = (1, -1) if left_team == 0 else (-1, 1)
        self.team_of = squads.team_of
        self.segs: list[Seg] = []
        self.moves: list[Move] = []
        self.cuts: list[tuple[int, Shot]] = []           # (priority, cut)
        self.events: list[Event] = []
        self.causes: list[int | None] = []               # creation index of each event's cause
        self.where: list[int] = []                       # person whose position is the event's xy (-1: the ball)
        self.spells = {p: [0.0, np.inf] for p in squads.on}
        self.last_move: dict[int, Move] = {}
        self.t, self.ball, self.height, self.carrier = 0.0, np.zeros(2), 0.0, -1

    # ---- helpers in a team's frame
    def spot(self, team: int, x: float, y: float) -> np.ndarray:
        """A point given in `team`'s frame, in the world."""
        return team_frame((x, y), self.dirs[team])

    def local(self, team: int, p) -> np.ndarray:
        return team_frame(p, self.dirs[team])

    def members(self, team: int, *lines: str) -> list[int]:
        """On-pitch players of `team` in `lines` (default: the outfield); all outfield players if none is."""
        found = sorted(p for p in self.squads.on if self.team_of[p] == team
                       and self.squads.line(p) in (lines or ("def", "mid", "att")))
        return found or (self.members(team) if lines else found)

    def pick(self, team: int, *lines: str, side: int = 0, exclude=()) -> int:
        """A random on-pitch player of `team` in one of `lines`; `side` +1/-1 prefers the left/right of the shape."""
        pool = [p for p in self.members(team, *lines) if p not in exclude] or self.members(team)
        if side:
            flank = [p for p in pool if side * self.squads.slot_xy[p, 1] > 5]
            pool = flank or pool
        return int(self.rng.choice(pool))

    def keeper(self, team: int) -> int:
        return self.members(team, "gk")[0]

    def shape_now(self, possession: int) -> np.ndarray:
        """Everyone's shape target [P, 2] for the ball where it is now."""
        return shape_targets(self.ball[None], np.array([possession]), self.squads, self.dirs)[0]

    def whereabouts(self, possession: int) -> np.ndarray:
        """A guess, at script time, of where everyone is now [P, 2]: a recent override's end, else the shape."""
        guess = self.shape_now(possession)
        for person, mv in self.last_move.items():
            if mv.t0 - 1.0 <= self.t <= mv.t1 + 3.0:
                guess[person] = mv.b
        return guess

    def nearest(self, team: int, point, exclude=()) -> int:
        """The outfield player of `team` (-1: of either team) who is probably nearest to `point`."""
        targets = self.whereabouts(self.possession())
        pool = [p for t in ((0, 1) if team < 0 else (team,)) for p in self.members(t) if p not in exclude]
        return min(pool, key=lambda p: float(np.linalg.norm(targets[p] - point)))

    def possession(self) -> int:
        return int(self.team_of[self.carrier]) if self.carrier >= 0 else -1

    # ---- events and cuts
    def event(self, t: float, kind: str, team: int | None, players=(), cause: int | None = None,
              label: str | None = None, where: int = -1, **detail) -> int:
        """Record an event; returns its creation index (for `cause` links). xy is filled from the tracks."""
        self.events.append(Event(time=float(t), kind=kind, team=team, players=tuple(int(p) for p in players),
                                 label=label, important=label in ("soccer-ball", "soccer-ball-own", "penalty",
                                                                  "r-card", "yr-card", "penalty-missed"),
                                 detail=detail))
        self.causes.append(cause)
        self.where.append(where)
        return len(self.events) - 1

    def cut(self, start: float, length: float, view: str, cue: str | None = None, team: int | None = None,
            subject: int | None = None, priority: int = 1) -> None:
        self.cuts.append((priority, Shot(float(start), float(start + length), view, cue, team, subject)))

    # ---- the ball's plan; each call advances the script's clock self.t
    def _seg(self, t1: float, b, **kw) -> None:
        b = np.asarray(b, float)
        self.segs.append(Seg(self.t, t1, self.ball.copy(), b, h0=self.height, **kw))
        self.t, self.ball, self.height = t1, b, kw.get("h1", 0.0)

    def rest(self, until: float, at=None) -> None:
        """A dead ball (at `at`, placed there by hand) until `until`."""
        if self.height > 0:    # let a ball in the air drop first
            self._seg(min(self.t + 0.4, until), self.ball, h1=0.0)
        if at is not None:
            self.ball = np.asarray(at, float)
        self.carrier = -1
        if until > self.t:
            self._seg(until, self.ball, placed=at is not None)

    def dribble(self, duration: float, to=None, region=None, toward=None) -> None:
        """The carrier runs with the ball, to `to`, or forward (toward `toward`) at 2.5-5.5 m/s."""
        team = self.possession()
        if to is None:
            aim = self.spot(team, 1.0, 0.0) if toward is None else np.asarray(toward) - self.ball
            angle = np.arctan2(aim[1], aim[0]) + self.rng.normal(0, 0.9 if toward is None else 0.4)
            reach = self.rng.uniform(2.5, 5.5) * duration
            if toward is not None:
                reach = min(reach, float(np.linalg.norm(aim)))
            to = clip_pitch(self.ball + reach * np.array([np.cos(angle), np.sin(angle)]), 3.0)
            if region is not None:
                local = self.local(team, to)
                to = self.local(team, (np.clip(local[0], *region), local[1]))
        to = np.asarray(to, float)
        self.move(self.t, self.t + duration, self.carrier, to, start=self.ball)
        self._seg(self.t + duration, to, carrier=self.carrier, team=team)

    def pass_to(self, person: int, point, duration: float | None = None, peak: float | None = None,
                h1: float = 0.0) -> None:
        """The ball travels to `point` where `person` (who runs there in time) receives it."""
        point = np.asarray(point, float)
        dist = float(np.linalg.norm(point - self.ball))
        if duration is None:
            duration = max(0.4, dist / (13.0 if dist < 25 else 19.0))
        if peak is None:
            peak = 0.0 if dist < 25 else float(np.clip(0.1 * dist, 2, 8))
        src = self.carrier
        team = self.team_of[src] if src >= 0 else self.team_of[person]
        estimate = self.whereabouts(self.possession())[person]
        lead = float(np.clip(np.linalg.norm(estimate - point) / 6.5 + 1.0, 1.0, 8.0))   # a second to spare
        arrive = self.t + duration
        self.move(arrive - lead, arrive, person, point)
        self._seg(arrive, point, src=src, dst=person, peak=peak, h1=h1, team=int(team))
        self.carrier = person

    def kick(self, point, duration: float, peak: float = 0.0, h1: float = 0.0, dst: int = -1) -> None:
        """A strike with no teammate receiving it (shot, clearance); `dst` is a goalkeeper who stops it."""
        team = self.possession()
        duration = max(duration, float(np.linalg.norm(np.asarray(point) - self.ball)) / 30)
        if dst >= 0:
            self.move(self.t, self.t + duration, dst, point)
        self._seg(self.t + duration, point, src=self.carrier, dst=dst, peak=peak, h1=h1, team=team)
        self.carrier = dst

    def move(self, t0: float, t1: float, person: int, to, start=None) -> None:
        """Override `person`'s target: from `start` (default: where his target was at t0) to `to` over [t0, t1]."""
        mv = Move(t0, t1, person, None if start is None else np.asarray(start, float), np.asarray(to, float))
        self.moves.append(mv)
        self.last_move[person] = mv

    def hold(self, t0: float, t1: float, person: int, at) -> None:
        self.move(t0, t1, person, at, start=at)

    # ---- open play
    def receiver(self, team: int, region=None, toward=None) -> tuple[int, np.ndarray]:
        """A teammate to pass to (8-35 m away, forward preferred, or nearer `toward`) and where he takes it."""
        targets = self.shape_now(team)
        pool = [p for p in self.members(team) + self.members(team, "gk") if p != self.carrier]
        spot = np.array([targets[p] for p in pool])                            # [m, 2]
        dist = np.linalg.norm(spot - self.ball, axis=1)
        if toward is None:
            ahead = np.array([self.local(team, q)[0] for q in spot]) - self.local(team, self.ball)[0]
            weight = np.exp(-(((dist - 18) / 12) ** 2)) * (1 + np.clip(ahead, 0, 25) / 12)
        else:
            gain = np.linalg.norm(self.ball - toward) - np.linalg.norm(spot - toward, axis=1)
            weight = np.exp(np.clip(gain, -30, 30) / 6) * (dist < 40)
        weight *= np.array([0.05 if self.squads.line(p) == "gk" else 1.0 for p in pool]) + 1e-9
        k = int(self.rng.choice(len(pool), p=weight / weight.sum()))
        point = clip_pitch(spot[k] + self.rng.normal(0, 1.5, 2), 2.0)
        if region is not None:
            local = self.local(team, point)
            point = self.local(team, (np.clip(local[0], *region), local[1]))
        return pool[k], point

    def win_ball(self, team: int, until: float) -> None:
        """The nearest player of `team` takes the ball (a tackle, an interception, a loose ball): the ball rolls a
        little his way while he runs to it."""
        taker = self.nearest(team, self.ball)
        gap = self.whereabouts(self.possession())[taker] - self.ball
        dist = float(np.linalg.norm(gap))
        point = clip_pitch(self.ball + gap * min(1.0, 3.0 / max(dist, 1e-6)), 2.0)
        self.pass_to(taker, point, duration=float(np.clip((dist + 5) / 7, 0.3, 3.5)))

    def open_play(self, until: float, team: int | None = None, region=None, toward=None) -> None:
        """Passing and dribbling until `until`. With `team`, that team keeps the ball (in `region`, a range of
        its team-frame x; moving `toward` a point); without, whoever has it plays on and passes are sometimes
        intercepted."""
        while until - self.t > 1e-6:
            holder = self.possession()
            want = team if team is not None else holder
            if want < 0:    # a loose ball goes to whoever is nearest
                want = int(self.team_of[self.nearest(-1, self.ball)])
            if holder != want:
                self.win_ball(want, until)
                continue
            left = until - self.t
            if left < 3.0:
                self.dribble(left, region=region, toward=toward)
                return
            self.dribble(self.rng.uniform(0.8, min(2.5, left - 2.0)), region=region, toward=toward)
            receiver, point = self.receiver(want, region, toward)
            if team is None and self.rng.random() < 0.12:
                receiver = self.nearest(1 - want, point)
            duration = max(0.4, float(np.linalg.norm(point - self.ball)) / 14)
            if self.t + duration > until - 0.3:
                self.dribble(until - self.t, region=region, toward=toward)
                return
            self.pass_to(receiver, point, duration)

    def build_up(self, team: int, point, at: float, lines=("att", "mid"), side: int = 0, carry: float = 1.2) -> int:
        """Open play by `team` toward `point`, ending with a player on the ball there at about `at` (later if
        the last pass needs longer). The player is one of `lines` whose place in the shape is near `point`."""
        point = np.asarray(point, float)
        back = point - self.local(team, (4.0, 0.0))
        long_ball = float(np.linalg.norm(back - self.ball)) / 20    # time a long ball would need from here
        self.open_play(at - carry - max(1.5, long_ball), team=team, toward=back)
        if self.possession() != team:
            self.win_ball(team, self.t + 0.5)
        guess = self.whereabouts(team)
        pool = [p for p in self.members(team, *lines) if not side or side * self.squads.slot_xy[p, 1] > 5]
        pool = pool or self.members(team, *lines)
        if self.carrier in pool and np.linalg.norm(point - self.ball) > 5.5 * max(at - self.t, 0.1):
            pool.remove(self.carrier)    # too far to run with the ball: pass to someone
        near = np.array([np.linalg.norm(guess[p] - point) for p in pool])
        actor = int(pool[int(self.rng.choice(len(pool), p=_softmin(near, 8.0)))])
        if self.carrier != actor:
            dist = float(np.linalg.norm(back - self.ball))
            spare = at - carry - self.t - max(dist / 14, 0.4)
            if spare > 0.3:    # time to spare: run at them first
                self.dribble(spare, toward=back)
                dist = float(np.linalg.norm(back - self.ball))
            self.pass_to(actor, back, duration=max(at - carry - self.t, dist / 24, 0.3))
        self.dribble(max(0.3, at - self.t), to=point)
        return actor

    # ---- set pieces (placements of everyone for a dead ball)
    def kickoff_setup(self, t0: float, t1: float, kicker_team: int) -> int:
        """Both teams in their own halves, the kicker at the centre spot; returns the kicker."""
        kicker = self.pick(kicker_team, "att")
        for p in sorted(self.squads.on):
            team = int(self.team_of[p])
            if team < 0:
                self.hold(t0, t1, p, (0.0, 12.0))
                continue
            slot = self.squads.slot_xy[p]
            x = -49.0 if self.squads.line(p) == "gk" else min(-12 + 0.8 * slot[0], -2.0)
            if team != kicker_team and np.hypot(x, slot[1]) < 9.5:
                x = -9.5
            self.hold(t0, t1, p, self.spot(team, x, slot[1]))
        self.hold(t0, t1, kicker, self.spot(kicker_team, -0.4, 0.3))
        return kicker

    def box_setup(self, t0: float, t1: float, team: int, taker: int, ball) -> None:
        """A delivery into the box (corner or wide free kick): attackers and defenders crowd the area."""
        rng = self.rng
        for p in self.members(team, "def", "mid", "att"):
            if p == taker:
                continue
            spot = (rng.uniform(40, 48), rng.uniform(-10, 10)) if rng.random() < 0.6 else (rng.uniform(14, 26),
                                                                                          rng.uniform(-20, 20))
            self.hold(t0, t1, p, self.spot(team, *spot))
        for p in self.members(1 - team, "def", "mid", "att"):
            spot = (rng.uniform(-50, -40), rng.uniform(-10, 10)) if rng.random() < 0.8 else (rng.uniform(-36, -28),
                                                                                             rng.uniform(-15, 15))
            self.hold(t0, t1, p, self.spot(1 - team, *spot))
        self.hold(t0, t1, self.keeper(1 - team), self.spot(1 - team, -51.5, 0.0))
        self.hold(t0, t1, taker, np.asarray(ball) - self.local(team, (1.0, 0.0)))

    def wall(self, t0: float, t1: float, team: int, ball) -> None:
        """Three defenders 9.15 m from the ball on the line to their goal."""
        goal = self.spot(team, HALF_L, 0.0)
        ball = np.asarray(ball, float)
        toward = (goal - ball) / max(np.linalg.norm(goal - ball), 1e-6)
        side = np.array([-toward[1], toward[0]])
        for k, p in enumerate(self.members(1 - team, "mid", "att")[:3]):
            self.hold(t0, t1, p, ball + 9.15 * toward + (k - 1) * 0.7 * side)

    def penalty_setup(self, t0: float, t1: float, team: int, taker: int) -> None:
        rng = self.rng
        for p in sorted(self.squads.on):
            if self.team_of[p] in (0, 1) and self.squads.line(p) != "gk" and p != taker:
                self.hold(t0, t1, p, self.spot(team, rng.uniform(29, 34), rng.uniform(-17, 17)))
        self.hold(t0, t1, taker, self.spot(team, HALF_L - PENALTY_SPOT - 2.0, 0.0))
        self.hold(t0, t1, self.keeper(1 - team), self.spot(1 - team, -HALF_L + 0.3, 0.0))

    def celebrate(self, t0: float, t1: float, team: int, scorer: int) -> None:
        """The scorer runs to a corner flag and teammates join him."""
        flag = self.spot(team, HALF_L - 3, 30 * self.rng.choice([-1, 1]))
        for k, p in enumerate([scorer, *self.rng.permutation([q for q in self.members(team) if q != scorer])[:3]]):
            self.move(t0, t0 + 5, int(p), flag + self.rng.normal(0, 1.2, 2) * (k > 0))
            self.hold(t0 + 5, t1, int(p), flag + self.rng.normal(0, 1.2, 2) * (k > 0))

    def leave(self, t0: float, t1: float, person: int) -> None:
        """`person` walks to the bench and is off the pitch from t1."""
        self.move(t0, t1, person, BENCH)
        self.spells[person][1] = t1
        self.squads.on.discard(person)

    def enter(self, t: float, leaving: int, entering: int) -> None:
        self.squads.send_on(leaving, entering)
        self.spells[entering] = [t, np.inf]
        self.hold(t, t + 1.0, entering, BENCH - (0.0, 1.5))

    def goal_kick(self, team: int, at: float, fetch: float = 4.0) -> None:
        """The ball is fetched to `team`'s six-yard box (within `fetch` s of `at`), then the keeper kicks long."""
        spot = self.spot(team, -HALF_L + 5.5, 6.0 * self.rng.choice([-1, 1]))
        keeper = self.keeper(team)
        self.rest(at - fetch)
        self.kick(spot, float(np.clip(at - 0.25 * fetch - self.t, 0.3, 2.5)), peak=1.0)
        self.rest(at)
        self.hold(at - 0.75 * fetch, at, keeper, spot - self.local(team, (1.0, 0)))
        self.carrier = keeper
        target = self.pick(team, "def", "mid")
        self.pass_to(target, self.spot(team, self.rng.uniform(-25, -10), self.rng.uniform(-20, 20)))

    def restart(self, team: int, at: float) -> None:
        """A dead ball where it lies until `at`; then the nearest player of `team` plays it short."""
        taker = self.nearest(team, self.ball)
        self.rest(at)
        self.hold(at - 2, at, taker, self.ball - self.local(team, (0.8, 0.0)))
        self.carrier = taker
        mate, point = self.receiver(team, None)
        self.pass_to(mate, point)

    # ---- realization
    def realize(self) -> HalfTrack:
        n = int(round(self.duration * RATE))
        times = np.arange(n) / RATE
        spans = [(_index(s.t0, n), _index(s.t1, n)) for s in self.segs]
        planned, possession = np.zeros((n, 2)), np.full(n, -1)
        for seg, (i0, i1) in zip(self.segs, spans, strict=True):
            s = (times[i0:i1] - seg.t0) / max(seg.t1 - seg.t0, 1e-9)
            planned[i0:i1] = seg.a + (seg.b - seg.a) * s[:, None]
            possession[i0:i1] = seg.team
        targets = shape_targets(planned, possession, self.squads, self.dirs)
        targets += wander(self.rng, n, len(self.team_of))
        for mv in self.moves:
            i0, i1 = _index(mv.t0, n), _index(mv.t1, n)
            if i1 <= i0:
                continue
            a = targets[i0, mv.person].copy() if mv.a is None else mv.a
            s = np.clip((times[i0:i1] - mv.t0) / max(mv.t1 - mv.t0, 1e-9), 0, 1)
            targets[i0:i1, mv.person] = a + (mv.b - a) * s[:, None]
        on = np.zeros((n, len(self.team_of)), bool)
        for p, (t0, t1) in self.spells.items():
            on[_index(t0, n):_index(t1, n), p] = True
        xy = chase(targets, on)
        ball = self.ball_path(xy, times, spans, planned)
        events = self.finish_events(xy, ball)
        return HalfTrack(half=self.half, duration=self.duration, rate=RATE, xy=xy, ball=ball.astype(np.float32),
                         events=events, shots=self.direct(events, possession), left_team=self.left_team)

    def ball_path(self, xy: np.ndarray, times: np.ndarray, spans, planned: np.ndarray) -> np.ndarray:
        """The ball [N, 3] from its plan: dribbles at the carrier's feet, flights between real feet, and every
        stretch starting where the last one really ended unless the ball was put down by hand."""
        n = len(times)
        ball = np.zeros((n, 3))
        velocity = np.gradient(xy, axis=0) if n > 1 else np.zeros_like(xy)    # [N, P, 2] m per sample
        last = self.segs[0].a if self.segs else np.zeros(2)
        for seg, (i0, i1) in zip(self.segs, spans, strict=True):
            end = min(i1, n - 1)
            if seg.carrier >= 0:
                feet, v = xy[i0:i1, seg.carrier], velocity[i0:i1, seg.carrier]
                speed = np.linalg.norm(v, axis=1, keepdims=True)
                ahead = np.where(speed > 0.05, v / np.maximum(speed, 1e-9), 0.0)
                ball[i0:i1, :2] = feet + 0.5 * ahead
                last = _feet(xy, end, seg.carrier, seg.b)
                continue
            a = seg.a if seg.placed else _feet(xy, i0, seg.src, last)
            still = seg.dst < 0 and np.allclose(seg.a, seg.b)
            b = a if still else _feet(xy, end, seg.dst, seg.b)
            s = (times[i0:i1] - seg.t0) / max(seg.t1 - seg.t0, 1e-9)
            ball[i0:i1, :2] = a + (b - a) * s[:, None]
            ball[i0:i1, 2] = seg.h0 + (seg.h1 - seg.h0) * s + 4 * seg.peak * s * (1 - s)
            last = b
        ball[:, 2] = np.maximum(ball[:, 2], 0.0)
        return np.where(np.isnan(ball), np.column_stack([planned, np.zeros(n)]), ball)   # carrier gone: the plan

    def finish_events(self, xy: np.ndarray, ball: np.ndarray) -> list[Event]:
        """Events sorted by time, with positions from the tracks and causes as indices into the sorted list."""
        order = sorted(range(len(self.events)), key=lambda k: (self.events[k].time, k))
        rank = {k: r for r, k in enumerate(order)}
        n = len(ball)
        for k, ev in enumerate(self.events):
            i = min(int(ev.time * RATE + 1e-6), n - 1)       # the sample at or just before the event
            p = self.where[k]
            if p >= 0 and np.isnan(xy[i, p, 0]):             # someone coming on: his first sample
                i = min(i + 1, n - 1)
            spot = xy[i, p] if p >= 0 and not np.isnan(xy[i, p, 0]) else ball[i, :2]
            ev.xy = (round(float(spot[0]), 2), round(float(spot[1]), 2))
            ev.cause = rank[self.causes[k]] if self.causes[k] is not None else None
        return [self.events[k] for k in order]

    def direct(self, events: list[Event], possession: np.ndarray) -> list[Shot]:
        """The broadcast: scripted cuts (highest priority wins an overlap), fillers in dead time up to ~12% of
        the half, main camera elsewhere. Sets each annotated event's visibility."""
        rng, duration = self.rng, self.duration
        anchors = [ev.time for ev in events if ev.label]
        taken: list[Shot] = []

        def free(start, end):
            return 0 <= start and end <= duration and all(end <= s.start or start >= s.end for s in taken)

        for _, shot in sorted(self.cuts, key=lambda c: -c[0]):
            if free(shot.start, shot.end):
                taken.append(shot)
        dead = np.flatnonzero(possession < 0) / RATE
        for _ in range(40):
            if sum(s.end - s.start for s in taken) >= 0.12 * duration or not len(dead):
                break
            start, length = float(rng.choice(dead)), float(rng.uniform(2, 4))
            if free(start - 1, start + length + 1) and all(abs(a - start - length / 2) > length / 2 + 2
                                                            for a in anchors):
                near = [p for p in sorted(self.squads.on) if self.team_of[p] >= 0]
                if rng.random() < 0.6:
                    subject = int(rng.choice(near))
                    taken.append(Shot(start, start + length, "closeup", "player", int(self.team_of[subject]),
                                      subject))
                else:
                    taken.append(Shot(start, start + length, "closeup", "crowd"))
        taken.sort(key=lambda s: s.start)
        shots, t = [], 0.0
        for s in taken:
            if s.start > t:
                shots.append(Shot(t, s.start, "main"))
            shots.append(s)
            t = s.end
        if t < duration:
            shots.append(Shot(t, duration, "main"))
        for ev in events:
            if ev.label:   # shown unless a cut about something else covers it
                showing = [s for s in shots if s.start <= ev.time < s.end]
                related = not showing or showing[0].view == "main" or showing[0].subject in ev.players
                ev.visibility = "visible" if related else "not shown"
        return shots


def _softmin(values: np.ndarray, scale: float) -> np.ndarray:
    """Probabilities favouring small values."""
    w = np.exp(-(values - values.min()) / scale)
    return w / w.sum()


def _index(t: float, n: int) -> int:
    """First sample at or after time t."""
    return int(np.clip(np.ceil(t * RATE - 1e-6), 0, n))


def _feet(xy: np.ndarray, i: int, person: int, fallback: np.ndarray) -> np.ndarray:
    if person < 0:
        return fallback
    spot = xy[min(i, len(xy) - 1), person]
    return fallback if np.isnan(spot).any() else spot.astype(float)

