"""Simulate a synthetic match: lineups, possession play, causal event chains and the broadcast direction.

A half is first written as a *script*: event chains (GRAMMAR.md) laid out in time with open play between them.
Scripting lays down the ball's plan (dribbles, passes, kicks, dead balls) and target overrides for the players a
chain involves (set-piece positions, runs, celebrations, walking off). Then every player chases a target (the
team shape shifted toward the ball, or his override) with a capped speed, and the ball is re-anchored to the
feet of whoever carries, passes or receives it: events play out in the positions.

Frames: the pitch frame of `star.geometry.pitch` (x along the pitch, +y the near touchline). A *team frame* has the
team attacking +x with its left wing at +y: world = (d * x, -d * y), d = +1 for the team defending the left goal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from star.world.match import Event, HalfTrack, Kit, Match, Person, Shot
from star.geometry.pitch import HALF_L, HALF_W, PENALTY_SPOT
from star.world.plan import CLUBS, PlannedGame

RATE = 5.0                      # track samples per second
MAX_SPEED = 8.5                 # m/s, a sprint
FOLLOW = 0.45                   # share of the gap to the target closed per sample (a ~0.4 s time constant)
BENCH = np.array([0.0, HALF_W + 1.0])   # where players leave and enter: the near touchline at halfway
ANCHOR_GAP = 8.0                # s, least time between two annotated events
OPEN_PLAY_GAP = 2.0             # s, least open play between two chains

# Shapes in a team frame: x relative to the block's centre (the goalkeeper is placed apart), y across (+ left).
FORMATIONS = {
    "4-4-2": (("GK", 0, 0), ("LB", -19, 24), ("LCB", -21, 8), ("RCB", -21, -8), ("RB", -19, -24),
              ("LM", -2, 24), ("LCM", -4, 8), ("RCM", -4, -8), ("RM", -2, -24), ("LS", 15, 7), ("RS", 15, -7)),
    "4-3-3": (("GK", 0, 0), ("LB", -19, 24), ("LCB", -21, 8), ("RCB", -21, -8), ("RB", -19, -24),
              ("LCM", -4, 14), ("CM", -7, 0), ("RCM", -4, -14), ("LW", 13, 23), ("ST", 16, 0), ("RW", 13, -23)),
    "4-2-3-1": (("GK", 0, 0), ("LB", -19, 24), ("LCB", -21, 8), ("RCB", -21, -8), ("RB", -19, -24),
                ("LDM", -9, 8), ("RDM", -9, -8), ("LW", 6, 23), ("AM", 5, 0), ("RW", 6, -23), ("ST", 16, 0)),
}
LINE = {"GK": "gk", "LB": "def", "LCB": "def", "RCB": "def", "RB": "def", "AM": "att", "LW": "att", "RW": "att",
        "LS": "att", "RS": "att", "ST": "att"}          # every other position is "mid"
STARTERS, BENCH_SIZE = 11, 5                           # per team; the bench holds one goalkeeper
MAX_SUBS = 5

FIRST_NAMES = (
    "Adam", "Ben", "Carl", "Dan", "Eli", "Finn", "Gary", "Hugo", "Ivan", "Jack", "Kai", "Leo", "Max", "Nico",
    "Owen", "Paul", "Reno", "Sam", "Theo", "Umar", "Vito", "Will", "Yann", "Zack", "Aaron", "Bruno", "Cesar",
    "Diego", "Emil", "Felix", "Goran", "Hans", "Igor", "Jonas", "Karim", "Lucas", "Marco", "Nils", "Oscar",
    "Pablo", "Rafa", "Sven", "Tomas", "Victor", "Yusuf", "Luis", "Mats", "Piet",
)
SURNAMES = (
    "Ashford", "Blake", "Carver", "Dalton", "Ellison", "Fairley", "Garrow", "Hartley", "Irving", "Jarvis",
    "Kendall", "Lowry", "Marsh", "Norwood", "Oakley", "Prescott", "Quinlan", "Rowe", "Sutton", "Thorne", "Upton",
    "Vance", "Whitlock", "Yardley", "Ambrose", "Bellamy", "Crowley", "Dunmore", "Everett", "Fenwick", "Gresham",
    "Holloway", "Ingram", "Kirby", "Lockwood", "Merritt", "Nash", "Osborne", "Pembroke", "Radcliffe", "Sheridan",
    "Wakefield", "Barros", "Costa", "Duarte", "Ferreira", "Moreau", "Lindqvist", "Novak", "Petrov", "Schaefer",
    "Varga", "Kovac", "Almeida", "Brandt", "Castell", "Delgado", "Esposito", "Fischer", "Okafor",
)
# Goalkeeper shirts: away from pitch green, line white, the referee's black and (checked below) both kits.
KEEPER_COLOURS = ((250, 120, 200), (0, 190, 200), (255, 240, 110), (120, 120, 255), (255, 90, 60), (190, 255, 90))


def team_frame(p, d: int) -> np.ndarray:
    """Team frame <-> world (the map is its own inverse)."""
    return np.array([d * p[0], -d * p[1]], float)


def clip_pitch(p, margin: float = 1.0) -> np.ndarray:
    return np.clip(p, [-HALF_L + margin, -HALF_W + margin], [HALF_L - margin, HALF_W - margin])


# ---------------------------------------------------------------- squads

@dataclass
class Squads:
    """Who is who and who is on the pitch: the state a match carries from one half to the next."""

    people: list[Person]
    position: list[str]                 # shape position of each person ("" on the bench and for the referee)
    slot_xy: np.ndarray                 # [P, 2] team-frame spot of that position
    on: set[int]                        # people on the pitch now (the referee included)
    booked: set[int] = field(default_factory=set)
    subs: list[int] = field(default_factory=lambda: [0, 0])
    score: list[int] = field(default_factory=lambda: [0, 0])

    @property
    def team_of(self) -> np.ndarray:
        return np.array([p.team for p in self.people])

    def line(self, person: int) -> str:
        return LINE.get(self.position[person], "mid")

    def bench(self, team: int) -> list[int]:
        """Outfield substitutes not yet used."""
        return [p.id for p in self.people if p.team == team and not p.starter and p.role == "player"
                and not self.position[p.id]]

    def send_on(self, leaving: int, entering: int) -> None:
        self.position[entering], self.slot_xy[entering] = self.position[leaving], self.slot_xy[leaving]
        self.on.discard(leaving)
        self.on.add(entering)


def _names(rng: np.random.Generator, count: int) -> list[str]:
    picks = rng.choice(len(FIRST_NAMES) * len(SURNAMES), size=count, replace=False)
    return [f"{FIRST_NAMES[k // len(SURNAMES)]} {SURNAMES[k % len(SURNAMES)]}" for k in picks]


def make_squads(rng: np.random.Generator) -> tuple[Squads, tuple[str, str]]:
    """Two squads of 11 starters + 5 substitutes (one goalkeeper each) and a referee; the coaches' names."""
    per_team = STARTERS + BENCH_SIZE
    names = _names(rng, 2 * per_team + 3)
    people, position, slot_xy = [], [], []
    for team in (0, 1):
        shape = FORMATIONS[str(rng.choice(list(FORMATIONS)))]
        bench_numbers = rng.choice(np.arange(12, 36), size=BENCH_SIZE, replace=False)
        numbers = [1, *rng.permutation(np.arange(2, 12)), *bench_numbers]
        for k in range(per_team):
            starter, keeper = k < STARTERS, k in (0, STARTERS)
            people.append(Person(id=len(people), name=names[len(people)], team=team,
                                 role="goalkeeper" if keeper else "player", shirt=int(numbers[k]), starter=starter))
            position.append(shape[k][0] if starter else "")
            slot_xy.append(shape[k][1:] if starter else (0, 0))
    people.append(Person(id=len(people), name=names[len(people)], team=-1, role="referee", shirt=0, starter=True))
    position.append("")
    slot_xy.append((0, 0))
    on = {p.id for p in people if p.starter}
    squads = Squads(people, position, np.array(slot_xy, float), on)
    return squads, (names[-2], names[-1])


def _colour_gap(a, b) -> int:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


def make_kits(planned: PlannedGame) -> tuple[Kit, Kit]:
    """Home in its home shirt; away in whichever of its shirts differs more from it; keepers apart from both."""
    home = CLUBS[planned.home][1]
    away = max(CLUBS[planned.away][2:0:-1], key=lambda c: _colour_gap(c, home))
    shirts = (home, away)
    kits, used = [], list(shirts)
    for shirt in shirts:
        apart = [c for c in KEEPER_COLOURS if all(_colour_gap(c, u) > 150 for u in used)]
        # some pairings of clubs leave no colour that far from all: then the farthest one
        keeper = apart[0] if apart else max(KEEPER_COLOURS, key=lambda c: min(_colour_gap(c, u) for u in used))
        used.append(keeper)
        shorts = (30, 30, 35) if sum(shirt) > 420 else (235, 235, 235)
        kits.append(Kit(shirt=shirt, shorts=shorts, goalkeeper=keeper))
    return kits[0], kits[1]


# ---------------------------------------------------------------- the team shape

def shape_targets(ball: np.ndarray, possession: np.ndarray, squads: Squads, dirs: tuple[int, int]) -> np.ndarray:
    """Where everyone wants to stand given the ball [N, 2] and the team in possession [N] (-1: dead ball).

    The block follows the ball, higher and wider in possession, deeper and narrower without it; the defending
    team's nearest outfield player presses the ball; the referee trails play. Returns world targets [N, P, 2]."""
    team_of = squads.team_of
    keeper = np.array([p.role == "goalkeeper" for p in squads.people])
    out = np.zeros((len(ball), len(team_of), 2))
    for team in (0, 1):
        d = dirs[team]
        members = np.flatnonzero(team_of == team)
        bx, by = d * ball[:, 0], -d * ball[:, 1]                           # ball in this team's frame
        has = possession == team
        centre = np.where(has, np.clip(0.6 * bx + 5, -15, 25), np.clip(0.6 * bx - 10, -28, 8))
        depth, width = np.where(has, 1.0, 0.75), np.where(has, 1.0, 0.8)
        slot = squads.slot_xy[members]                                     # [m, 2]
        x = centre[:, None] + slot[None, :, 0] * depth[:, None]            # [N, m]
        y = slot[None, :, 1] * width[:, None] + 0.3 * by[:, None]          # [N, m]
        gk = keeper[members]
        x[:, gk] = (-50 + np.clip(0.08 * (bx + HALF_L), 0, 6))[:, None]
        y[:, gk] = (0.12 * by)[:, None]
        x, y = np.clip(x, -HALF_L + 1.5, HALF_L - 1.5), np.clip(y, -HALF_W + 1.5, HALF_W - 1.5)
        out[:, members, 0], out[:, members, 1] = d * x, -d * y
        # the defending team's nearest outfield player closes the ball down, goal side
        pressing = (possession >= 0) & ~has
        dist = np.linalg.norm(out[:, members] - ball[:, None], axis=2)     # [N, m]
        dist[:, gk] = np.inf
        nearest = members[np.argmin(dist, axis=1)]
        rows = np.flatnonzero(pressing)
        out[rows, nearest[rows]] = ball[rows] + [-2.0 * d, 0.0]
    referee = np.flatnonzero(team_of < 0)
    out[:, referee] = (np.column_stack([0.8 * ball[:, 0], 0.6 * ball[:, 1] + 7]))[:, None]
    return out


def wander(rng: np.random.Generator, n: int, people: int) -> np.ndarray:
    """Slow individual drift [n, people, 2] (two sinusoids per axis, ~2 m), so nobody moves rigidly with the block."""
    t = np.arange(n)[:, None, None] / RATE                                 # [n, 1, 1]
    period = rng.uniform(12, 45, (2, people, 2))
    phase = rng.uniform(0, 2 * np.pi, (2, people, 2))
    amplitude = rng.uniform(0.6, 1.4, (2, people, 2))
    return sum(amplitude[k] * np.sin(2 * np.pi * t / period[k] + phase[k]) for k in range(2))


def chase(targets: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Positions [N, P, 2]: each person closes part of the gap to his target per sample, at most MAX_SPEED.
    People are NaN while off the pitch and appear at their target when they come on."""
    pos = targets[0].copy()
    out = np.empty(targets.shape, np.float32)
    cap = MAX_SPEED / RATE
    for i in range(len(targets)):
        if i:
            entering = on[i] & ~on[i - 1]
            pos[entering] = targets[i, entering]
        step = (targets[i] - pos) * FOLLOW
        norm = np.hypot(step[:, 0], step[:, 1])
        pos += step * np.minimum(1.0, cap / np.maximum(norm, 1e-9))[:, None]
        out[i] = pos
    out[~on] = np.nan
    return out


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


def plan_chain(rng: np.random.Generator, kind: str, team: int, **options) -> Chain:
    """Draw the timing of a chain. Moments are spaced so that what a later caption refers to lies > 15 s back."""
    u = rng.uniform
    anchors: tuple[str, ...]
    if kind == "kickoff":
        t = {"kick": u(2, 4)}
        t["end"], anchors = t["kick"] + 1.5, ("kick",)
    elif kind == "final":
        t, anchors = {"whistle": 3.0, "end": 5.0}, ("whistle",)
    elif kind in ("goal", "own_goal"):
        if options.get("how") == "corner":            # shot saved, corner, header in
            t = {"shot": u(5, 8)}
            t["corner"] = t["shot"] + u(16, 20)
            t["goal"] = t["corner"] + 1.6
        else:
            t = {"goal": u(5, 8)}
        t["restart"] = t["goal"] + u(16, 22)
        t["end"], anchors = t["restart"] + 1.5, ("goal",)
    elif kind == "penalty":
        t = {"foul": u(4, 6)}
        t["award"], t["kick"] = t["foul"] + 1.5, t["foul"] + u(20, 27)
        t["restart"] = t["kick"] + (u(18, 24) if options["scored"] else u(8, 10))
        t["end"], anchors = t["restart"] + 3, ("award", "kick")
    elif kind == "foul_corner":
        t = {"foul": u(3, 5)}
        t["free_kick"] = t["foul"] + u(9, 12)
        t["corner"] = t["free_kick"] + u(16, 19)
        t["end"] = t["corner"] + 9
        anchors = ("foul", "corner") if options.get("whistle") else ("corner",)
    elif kind == "shot_corner":
        t = {"shot": u(5, 8)}
        t["corner"] = t["shot"] + u(16, 21)
        t["end"] = t["corner"] + 9
        anchors = ("shot", "corner") if options.get("comment") else ("corner",)
    elif kind == "shot":
        t = {"shot": u(4, 7)}
        t["restart"] = t["shot"] + u(7, 10)
        t["end"], anchors = t["restart"] + 3, ("shot",)
    elif kind == "pressure":
        t = {"spell": u(20, 28)}
        t["end"], anchors = t["spell"] + 2.5, ("spell",)
    elif kind == "foul":
        t = {"foul": u(3, 5)}
        t["restart"] = t["foul"] + u(5, 8)
        t["end"], anchors = t["restart"] + 3, ("foul",)
    elif kind == "booking":
        t = {"foul": u(3, 5)}
        t["card"] = t["foul"] + u(9, 14)
        t["restart"] = t["card"] + u(3, 5)
        t["end"], anchors = t["restart"] + 3, ("card",)
    elif kind == "injury":
        t = {"foul": u(3, 5)}
        t["injury"] = t["foul"] + u(5, 8)
        t["restart"] = t["foul"] + u(26, 34)
        anchors = ("injury",)
        if options.get("sub"):
            t["sub"] = max(t["injury"] + 17, t["restart"] - 3)
            t["restart"] = t["sub"] + 3
            anchors = ("injury", "sub")
        t["end"] = t["restart"] + 3
    elif kind == "substitution":
        t = {"sub": u(6, 9)}
        t["restart"] = t["sub"] + u(3, 5)
        t["end"], anchors = t["restart"] + 3, ("sub",)
    else:
        raise ValueError(f"unknown chain kind {kind!r}")
    return Chain(kind, team, t, anchors, options)


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


# ---------------------------------------------------------------- the match

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
