"""Squads, kits and the team shape of a synthetic match: who plays, in which colours, and where everyone wants
to stand given the ball.

Frames: the pitch frame of `star.geometry.pitch` (x along the pitch, +y the near touchline). A *team frame* has the
team attacking +x with its left wing at +y: world = (d * x, -d * y), d = +1 for the team defending the left goal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from star.geometry.pitch import HALF_L, HALF_W
from star.world.match import Kit, Person
from star.world.plan import CLUBS, PlannedGame

RATE = 5.0                      # track samples per second
MAX_SPEED = 8.5                 # m/s, a sprint
FOLLOW = 0.45                   # share of the gap to the target closed per sample (a ~0.4 s time constant)

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

