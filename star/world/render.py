"""The broadcast renderer of the synthetic world: one half of a match as an H.264 video.

A main camera (pan-tilt-zoom, fixed behind the near touchline) follows play; cuts away from it show close-ups
(cards, the substitution board, a celebration, an injury, the ball in the net, a player, the crowd) and replays.
The main camera's picture is drawn from 3-D geometry with `Camera`, so the cameras `render_half` returns are the
exact truth a localizer can be scored against. Drawing is Pillow polygons in painter's order (far to near);
anything closer to the camera than NEAR is clipped away before projection.

Pixel convention (shared with `Camera`): pixel (i, j) covers u in [j, j+1), v in [i, i+1). A person's feet touch
the ground at the projected ground point: the figure's lowest row is round(v) - 1, so its bottom edge is v.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from star.errors import InputError
from star.provenance import atomic_path
from star.geometry import pitch
from star.geometry.camera import Camera
from star.world.match import Event, HalfTrack, Match, Person, Shot

NEAR = 0.5                    # m: geometry nearer the camera plane than this is clipped
LINE_WIDTH = 0.12             # m, painted lines
PERSON_HEIGHT = 1.8           # m
BALL_RADIUS = 0.11            # m
NET_DEPTH = 2.0               # m behind the goal line
PILLOW_SHIFT = 0.5            # px: Pillow centres pixel j on coordinate j, Camera on j + 0.5

GRASS = (52, 118, 48)
GRASS_LIGHT = (68, 138, 58)
LINE_COLOUR = (242, 242, 238)
ROOF = (36, 38, 46)
NET_COLOUR = (196, 196, 196)
BALL_COLOUR = (250, 250, 250)
SHADOW = (30, 70, 30)
REFEREE = (16, 16, 16)
SKIN = ((233, 192, 160), (198, 146, 106), (141, 94, 62), (92, 60, 40))
SPONSORS = ((20, 60, 170), (200, 20, 30), (250, 190, 0), (10, 130, 90), (110, 30, 140), (230, 90, 20))
REPLAY_COLOUR = (210, 0, 120)

# Main camera: two cascaded exponential smoothers per axis give a smooth pan with a lag of about 2 tau.
FOLLOW_TAU = (0.7, 1.2)       # s, x and y
ZOOM_TAU = 1.5                # s
DEAD_ZONE = (6.0, 5.0)        # m: the ball may wander this far from the aim before the camera reacts
COVERAGE = (50.0, 30.0)       # m of pitch across the frame: play in midfield, play near a box
COVERAGE_AT = (20.0, 38.0)    # |x| of the ball (m) where coverage starts and ends its change
AIM_LIMITS = ((-46.0, 46.0), (-26.0, 24.0))


# ---------------------------------------------------------------- sampling tracks at frame times

def at_times(samples: np.ndarray, rate: float, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of samples [N, ...] taken at `rate` Hz, at `times` (s) -> [len(times), ...].

    NaN (off the pitch) wins over a valid neighbour, except at exact sample times."""
    pos = np.clip(np.asarray(times) * rate, 0, len(samples) - 1)
    i0 = np.floor(pos).astype(int)
    w = pos - i0
    i1 = np.where(w > 0, np.minimum(i0 + 1, len(samples) - 1), i0)
    w = w.reshape(-1, *[1] * (samples.ndim - 1))                         # [F, 1, ...] broadcast over samples
    return samples[i0] * (1 - w) + samples[i1] * w


def shots_at(shots: list[Shot], times: np.ndarray) -> list[Shot | None]:
    """The shot showing at each time; None where no shot is listed (the main camera)."""
    found: list[Shot | None] = [None] * len(times)
    for shot in shots:
        for i in np.flatnonzero((times >= shot.start) & (times < shot.end)):
            found[i] = shot
    return found


def is_cut(shot: Shot | None) -> bool:
    return shot is not None and shot.view != "main"


# ---------------------------------------------------------------- the main camera

def fixture_rng(match: Match, purpose: str) -> np.random.Generator:
    """A generator seeded by the fixture: what belongs to the game (stadium, camera rig, faces) is the same in
    both halves."""
    return np.random.default_rng(zlib.crc32(f"{match.kickoff}|{match.teams}|{purpose}".encode()))


def main_camera_position(match: Match) -> np.ndarray:
    """Where this game's main camera stands (x, y, z): near the halfway line, behind the near touchline, high up."""
    rng = fixture_rng(match, "camera")
    return np.array([rng.uniform(-3, 3), pitch.HALF_W + rng.uniform(10, 16), -rng.uniform(13, 19)])


def _smoothing(tau: float, dt: float) -> float:
    return 1.0 - math.exp(-dt / tau)


def follow_play(track: HalfTrack, times: np.ndarray, position: np.ndarray, width: int, height: int) -> list[Camera]:
    """The main camera at each time: aims at the ball with a dead zone and lag, zooms in near a box."""
    ball = at_times(track.ball, track.rate, times)[:, :2]                   # [F, 2]
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    follow = np.array([_smoothing(t, dt) for t in FOLLOW_TAU])
    zoom = _smoothing(ZOOM_TAU, dt)
    start = np.nan_to_num(ball[0])
    target, stage1, aim = start.copy(), start.copy(), start.copy()
    log_cover = math.log(COVERAGE[0])
    cameras = []
    for b in ball:
        if not np.isnan(b).any():   # the dead zone: the target moves only when the ball leaves it
            target = np.clip(target, b - DEAD_ZONE, b + DEAD_ZONE)
            log_cover += zoom * (math.log(np.interp(abs(b[0]), COVERAGE_AT, COVERAGE)) - log_cover)
        stage1 += follow * (target - stage1)
        aim += follow * (stage1 - aim)
        aim = np.clip(aim, *np.array(AIM_LIMITS).T)
        cameras.append(_looking_at(position, aim, math.exp(log_cover), width, height))
    return cameras


def _looking_at(position: np.ndarray, aim: np.ndarray, coverage: float, width: int, height: int) -> Camera:
    """A camera at `position` centred on the ground point `aim`, `coverage` metres across the frame there."""
    dx, dy = aim[0] - position[0], aim[1] - position[1]
    ground = math.hypot(dx, dy)
    distance = math.hypot(ground, position[2])
    values = dict(x=position[0], y=position[1], z=position[2], pan=math.atan2(dx, -dy),
                  tilt=math.atan2(-position[2], ground), focal=width * distance / coverage)
    # rounded as Camera.to_dict rounds, so the camera drawn is exactly the camera reported
    return Camera(**{k: round(float(v), 6) for k, v in values.items()}, width=width, height=height)


# ---------------------------------------------------------------- projection with near-plane clipping

def _clip_polygons(points: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sutherland-Hodgman against the plane depth = NEAR for k polygons of n vertices each.

    points [k, n, 3] (world), depth [k, n] -> the parts in front, back to back [m, 3], and their sizes [k].
    Depth is affine in world coordinates, so crossings interpolate in the world frame."""
    nxt = np.r_[1:points.shape[1], 0]
    inside = depth >= NEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (NEAR - depth) / (depth[:, nxt] - depth)
    crossing = points + t[..., None] * (points[:, nxt] - points)
    both = np.stack([points, crossing], axis=2)                             # [k, n, 2, 3]: vertex, then crossing
    keep = np.stack([inside, inside != inside[:, nxt]], axis=2)             # [k, n, 2]
    return both[keep], keep.sum(axis=(1, 2))


def _project_polygons(camera: Camera, vertices: np.ndarray, starts: np.ndarray) -> tuple[dict, np.ndarray]:
    """Polygons stored back to back -> ({index: flat pixel list} for those on screen, depth of each polygon)."""
    uv, depth = camera.project(vertices)
    uv -= PILLOW_SHIFT
    ends = np.append(starts[1:], len(vertices))
    dmin, dmax = np.minimum.reduceat(depth, starts), np.maximum.reduceat(depth, starts)
    lo, hi = np.minimum.reduceat(uv, starts), np.maximum.reduceat(uv, starts)   # [P, 2] pixel bounding boxes
    visible = (hi[:, 0] >= 0) & (lo[:, 0] < camera.width) & (hi[:, 1] >= 0) & (lo[:, 1] < camera.height)
    flat = uv.ravel().tolist()
    shown = {p: flat[2 * starts[p]:2 * ends[p]] for p in np.flatnonzero(visible & (dmin >= NEAR)).tolist()}
    partial = np.flatnonzero((dmin < NEAR) & (dmax > NEAR))
    if len(partial):   # clip the polygons that reach behind the camera, batched by vertex count
        sizes = ends[partial] - starts[partial]
        indices, parts, counts = [], [], []
        for size in np.unique(sizes):
            group = partial[sizes == size]
            rows = starts[group][:, None] + np.arange(size)                    # [k, size] vertex indices
            points, count = _clip_polygons(vertices[rows], depth[rows])
            indices.append(group)
            parts.append(points)
            counts.append(count)
        flat = (camera.project(np.concatenate(parts))[0] - PILLOW_SHIFT).ravel().tolist()
        offsets = np.cumsum(np.concatenate([[0], *counts]) * 2).tolist()
        shown.update({p: flat[a:b] for p, a, b in zip(np.concatenate(indices).tolist(), offsets[:-1], offsets[1:],
                                                      strict=True)})
    mean_depth = np.add.reduceat(depth, starts) / (ends - starts)
    return shown, mean_depth


def _project_segments(camera: Camera, ends: np.ndarray, widths: np.ndarray) -> list[tuple[int, list, int]]:
    """3-D segments [S, 2, 3] -> (index, [u0, v0, u1, v1], width px) for those on screen, clipped to NEAR."""
    if not len(ends):
        return []
    uv, depth = camera.project(ends.reshape(-1, 3))                        # [2S, 2], [2S]
    uv, depth = uv.reshape(-1, 4), depth.reshape(-1, 2)                    # [S, u0 v0 u1 v1], [S, 2 ends]
    near = depth.min(1)
    partial = (near < NEAR) & (depth.max(1) > NEAR)
    if partial.any():   # move the end behind the near plane onto it
        a, b = ends[partial, 0], ends[partial, 1]
        da, db = depth[partial, 0], depth[partial, 1]
        cross = a + ((NEAR - da) / (db - da))[:, None] * (b - a)
        behind_a = (da < NEAR)[:, None]
        clipped = np.stack([np.where(behind_a, cross, a), np.where(behind_a, b, cross)], axis=1)   # [k, 2, 3]
        uv[partial] = camera.project(clipped.reshape(-1, 3))[0].reshape(-1, 4)   # [2k, 2] -> [k, 4]
        near[partial] = NEAR
    uv, inside = _clip_to_frame(uv - PILLOW_SHIFT, camera.width, camera.height)
    px = np.maximum(1, np.round(widths * camera.focal / np.maximum(near, NEAR))).astype(int)
    return [(s, uv[s].tolist(), int(px[s])) for s in np.flatnonzero(inside & (near >= NEAR))]


def _clip_to_frame(uv: np.ndarray, width: int, height: int, margin: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Liang-Barsky: pixel segments [S, 4] cut to the frame plus a margin, and which ones cross it at all.

    Pillow walks a line pixel by pixel, off-screen parts included, so long lines must be cut first."""
    start, delta = uv[:, :2], uv[:, 2:] - uv[:, :2]                        # [S, 2] each
    lo, hi = np.array([-margin, -margin]), np.array([width + margin, height + margin])
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lo, t_hi = (lo - start) / delta, (hi - start) / delta             # [S, 2] where each boundary is met
    enter = np.where(delta > 0, t_lo, np.where(delta < 0, t_hi, -np.inf)).max(1).clip(0, None)
    leave = np.where(delta > 0, t_hi, np.where(delta < 0, t_lo, np.inf)).min(1).clip(None, 1)
    parallel_out = ((delta == 0) & ((start < lo) | (start > hi))).any(1)
    inside = (enter <= leave) & ~parallel_out
    cut = np.concatenate([start + enter[:, None] * delta, start + leave[:, None] * delta], axis=1)   # [S, 4]
    return np.where(inside[:, None], cut, uv), inside


# ---------------------------------------------------------------- the static stadium

def _grid(origin, along, up, n_along: int, n_up: int) -> np.ndarray:
    """Split the planar quad origin + a*along + b*up (a, b in [0, 1]) into cells -> [n_along*n_up, 4, 3]."""
    origin, along, up = (np.asarray(v, float) for v in (origin, along, up))
    a = np.arange(n_along)[:, None, None] / n_along                        # [A, 1, 1]
    b = np.arange(n_up)[None, :, None] / n_up                              # [1, B, 1]
    corner = origin + a * along + b * up                                   # [A, B, 3]
    da, db = along / n_along, up / n_up
    cells = np.stack([corner, corner + da, corner + da + db, corner + db], axis=2)   # [A, B, 4, 3]
    return cells.reshape(-1, 4, 3)                                         # [A*B, 4, 3]


def _corners(polyline: np.ndarray) -> np.ndarray:
    """A ground polyline [n, 2] without its collinear samples (a straight line needs only its ends) -> [k, 2]."""
    d = np.diff(polyline, axis=0)
    turns = np.abs(d[:-1, 0] * d[1:, 1] - d[:-1, 1] * d[1:, 0]) > 1e-9
    return polyline[np.r_[True, turns, True]]


def _ribbon(points: np.ndarray, width: float) -> np.ndarray:
    """A painted line of `width` metres around a ground polyline [k, 2] -> ground polygon [2k, 3] (z = 0), with
    mitred corners."""
    unit = np.diff(points, axis=0)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    normal = np.stack([-unit[:, 1], unit[:, 0]], axis=1)                  # [k-1, 2] per segment
    closed = np.allclose(points[0], points[-1])
    before = np.concatenate([normal[-1:] if closed else normal[:1], normal])   # [k, 2] segment before each vertex
    after = np.concatenate([normal, normal[:1] if closed else normal[-1:]])    # [k, 2] segment after each vertex
    miter = (before + after) / (1 + (before * after).sum(axis=1, keepdims=True))
    side = width / 2 * miter
    outline = np.concatenate([points + side, (points - side)[::-1]])      # out along one side, back along the other
    return np.column_stack([outline, np.zeros(len(outline))])


def _stand_colours(rng: np.random.Generator, count: int, home, away) -> list[tuple[int, int, int]]:
    """Crowd sections: mostly home colours, some away, some neutral, each at its own brightness."""
    palette = np.array([home, home, home, away, (70, 70, 80), (150, 150, 160), (110, 90, 70)], float)
    picks = palette[rng.integers(0, len(palette), count)] * rng.uniform(0.45, 0.85, (count, 1))
    return [tuple(c) for c in picks.astype(int).tolist()]


class Stadium:
    """The static scene as world polygons and segments: stands, boards, grass, lines, goals.

    Stands are re-sorted far to near for every camera; the rest is drawn in a fixed order that is already
    far to near for any camera above the grass."""

    def __init__(self, rng: np.random.Generator, home_colour, away_colour, lines: bool = True, goals: bool = True):
        L, W = pitch.HALF_L, pitch.HALF_W
        stands = np.concatenate([
            _grid((-64, -W - 5, -1.5), (128, 0, 0), (0, -31, -22), 16, 3),            # far side
            _grid((-L - 6.5, W + 11, -1.5), (0, -2 * W - 16, 0), (-26, 0, -19), 12, 3),  # behind the left goal
            _grid((L + 6.5, W + 11, -1.5), (0, -2 * W - 16, 0), (26, 0, -19), 12, 3),    # behind the right goal
        ])
        boards = np.concatenate([
            _grid((-L - 5.5, -W - 4, 0), (2 * L + 11, 0, 0), (0, 0, -0.9), 12, 1),
            _grid((-L - 5.5, -W - 4, 0), (0, 2 * W + 12, 0), (0, 0, -0.9), 8, 1),
            _grid((L + 5.5, -W - 4, 0), (0, 2 * W + 12, 0), (0, 0, -0.9), 8, 1),
        ])
        ground = _grid((-L - 5.5, -W - 4, 0), (2 * L + 11, 0, 0), (0, 2 * W + 30, 0), 1, 1)
        stripes = _grid((-L, -W - 2, 0), (2 * L, 0, 0), (0, 2 * W + 4, 0), 20, 1)[::2]

        shapes = [*stands, *ground, *stripes]
        colours = _stand_colours(rng, len(stands), home_colour, away_colour) + [GRASS] + [GRASS_LIGHT] * len(stripes)
        polylines = [_corners(line) for line in pitch.line_polylines(step=1.0).values()] if lines else []
        shapes += [_ribbon(line, LINE_WIDTH) for line in polylines]
        colours += [LINE_COLOUR] * len(polylines)
        shapes += list(boards)
        colours += [SPONSORS[i % len(SPONSORS)] for i in range(len(boards))]
        self.vertices = np.concatenate(shapes)                             # [V, 3] all polygons back to back
        self.starts = np.cumsum([0] + [len(s) for s in shapes[:-1]])
        self.colours = colours
        self.n_stands = len(stands)

        # A line's centre is also drawn one pixel wide, so a far line thinner than a pixel still shows unbroken.
        centres = [np.stack([line[:-1], line[1:]], axis=1) for line in polylines]   # [k-1, 2 ends, 2] each
        centres = np.concatenate(centres) if centres else np.zeros((0, 2, 2))
        segments = [np.concatenate([centres, np.zeros((*centres.shape[:2], 1))], axis=2)]   # [S, 2, 3] on z = 0
        widths, self.segment_colours = [np.zeros(len(centres))], [LINE_COLOUR] * len(centres)
        if goals:
            goal_segments, goal_widths, goal_colours = _goal_segments()
            segments.append(goal_segments)
            widths.append(goal_widths)
            self.segment_colours += goal_colours
        self.segments, self.segment_widths = np.concatenate(segments), np.concatenate(widths)

    def draw(self, canvas: ImageDraw.ImageDraw, camera: Camera) -> None:
        shown, depth = _project_polygons(camera, self.vertices, self.starts)
        order = np.concatenate([np.argsort(-depth[:self.n_stands]), np.arange(self.n_stands, len(depth))])
        for p in order.tolist():
            if p in shown:
                canvas.polygon(shown[p], fill=self.colours[p])
        for s, xy, px in _project_segments(camera, self.segments, self.segment_widths):
            canvas.line(xy, fill=self.segment_colours[s], width=px)


def _goal_segments():
    """Both goals as 3-D segments: nets (a mesh on the back, sides and roof), then the posts and crossbar."""
    segments, widths, colours = [], [], []
    for side in (-1, 1):
        x0, x1 = side * pitch.HALF_L, side * (pitch.HALF_L + NET_DEPTH)
        y0, y1, h = -pitch.GOAL_WIDTH / 2, pitch.GOAL_WIDTH / 2, -pitch.GOAL_HEIGHT
        mesh = []
        for y in np.linspace(y0, y1, 7):
            mesh += [((x1, y, 0), (x1, y, h)), ((x0, y, h), (x1, y, h))]     # back verticals, roof
        for z in np.linspace(0, h, 4)[:-1]:
            mesh.append(((x1, y0, z), (x1, y1, z)))                            # back horizontals
            mesh += [((x0, y, z), (x1, y, z)) for y in (y0, y1)]               # side horizontals
        mesh += [((x0 + (x1 - x0) / 2, y, 0), (x0 + (x1 - x0) / 2, y, h)) for y in (y0, y1)]   # side verticals
        segments += mesh
        widths += [0.03] * len(mesh)
        colours += [NET_COLOUR] * len(mesh)
        frame = pitch.goal_posts(side)
        segments += [tuple(map(tuple, seg)) for seg in frame]
        widths += [0.12] * len(frame)
        colours += [LINE_COLOUR] * len(frame)
    return np.array(segments, float), np.array(widths), colours


# ---------------------------------------------------------------- people and ball

# Figure parts: (bottom, top, left, right) in metres relative to the feet, and the colour that paints them.
# The legs are one block: two legs a pixel wide each would lose their colour to yuv420p's shared chroma.
FIGURE_PARTS = (
    ((0.0, 0.5, -0.16, 0.16), "socks"), ((0.45, 0.9, -0.2, 0.2), "shorts"), ((0.85, 1.5, -0.25, 0.25), "shirt"),
    ((1.5, 1.8, -0.11, 0.11), "skin"),
)
PART_BOXES = np.array([box for box, _ in FIGURE_PARTS])                  # [parts, 4]
FIGURE_WIDTH = float(PART_BOXES[:, 3].max() - PART_BOXES[:, 2].min())   # m, the widest part (the shirt)


@dataclass(frozen=True)
class Look:
    shirt: tuple[int, int, int]
    shorts: tuple[int, int, int]
    socks: tuple[int, int, int]
    skin: tuple[int, int, int]

    def part_colours(self) -> list[tuple[int, int, int]]:
        return [getattr(self, slot) for _, slot in FIGURE_PARTS]


def person_looks(match: Match) -> list[Look]:
    """Colours of every person: team kits (goalkeepers in their own colour), the referee in black."""
    rng = fixture_rng(match, "skin")
    looks = []
    for person in match.people:
        skin = SKIN[int(rng.integers(len(SKIN)))]
        if person.role == "referee" or person.team not in (0, 1):
            looks.append(Look(REFEREE, REFEREE, REFEREE, skin))
            continue
        kit = match.kits[person.team]
        if person.role == "goalkeeper":
            dark = tuple(int(c * 0.6) for c in kit.goalkeeper)
            looks.append(Look(kit.goalkeeper, dark, kit.goalkeeper, skin))
        else:
            looks.append(Look(kit.shirt, kit.shorts, kit.shirt, skin))
    return looks


def draw_people(canvas: ImageDraw.ImageDraw, camera: Camera, xy: np.ndarray, colours: list[list]) -> None:
    """Upright figures, far to near, feet exactly on their projected ground points.

    xy [people, 2] (NaN = absent); colours[person] = one colour per FIGURE_PARTS entry."""
    present = np.flatnonzero(~np.isnan(xy).any(axis=1))
    feet = np.column_stack([xy[present], np.zeros(len(present))])
    uv, depth = camera.project(np.concatenate([feet, feet - [0, 0, PERSON_HEIGHT]]))
    n = len(present)
    u, v, head, depth = uv[:n, 0:1], uv[:n, 1:2], uv[n:, 1], depth[:n]    # [n, 1], [n, 1], [n], [n]
    on_screen = (depth >= NEAR) & (u[:, 0] > -50) & (u[:, 0] < camera.width + 50) & (head < camera.height)
    s = (v - head[:, None]) / PERSON_HEIGHT                               # [n, 1] px per metre at each person
    bottom, top, left, right = PART_BOXES.T                                # [parts] each
    x0, y0 = np.round(u + left * s), np.round(v - top * s)                 # [n, parts]
    x1, y1 = np.maximum(np.round(u + right * s) - 1, x0), np.maximum(np.round(v - bottom * s) - 1, y0)
    boxes = np.stack([x0, y0, x1, y1], axis=-1).astype(int).tolist()       # [n, parts, 4]
    for k in np.argsort(-depth).tolist():
        if on_screen[k]:
            for box, colour in zip(boxes[k], colours[present[k]], strict=True):
                canvas.rectangle(box, fill=colour)


def draw_ball(canvas: ImageDraw.ImageDraw, camera: Camera, ball: np.ndarray) -> None:
    """The ball's shadow on the grass and the ball at its height. ball: x, y, height above ground (m)."""
    if np.isnan(ball).any():
        return
    points = np.array([[ball[0], ball[1], 0.0], [ball[0], ball[1], -ball[2] - BALL_RADIUS]])
    uv, depth = camera.project(points)
    if depth.min() < NEAR:
        return
    (su, sv), (bu, bv) = (uv - PILLOW_SHIFT).tolist()
    r = BALL_RADIUS * camera.focal / depth
    canvas.ellipse((su - 1.4 * r[0] - 0.5, sv - 0.5 * r[0] - 0.3, su + 1.4 * r[0] + 0.5, sv + 0.5 * r[0] + 0.3),
                   fill=SHADOW)
    rb = max(float(r[1]), 0.8)
    canvas.ellipse((bu - rb, bv - rb, bu + rb, bv + rb), fill=BALL_COLOUR)


# ---------------------------------------------------------------- overlays: scoreboard and replay banner

@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def short_name(club: str) -> str:
    return club.split()[0][:3].upper()


def scoring_team(event: Event) -> int | None:
    """The team a goal counts for, or None when the event is no goal."""
    if event.team is None:
        return None
    if event.kind == "goal" or (event.kind == "penalty" and event.detail.get("scored")):
        return event.team
    if event.kind == "own_goal":   # the acting team put the ball in its own net
        return 1 - event.team
    return None


class Scoreboard:
    """Top-left overlay: team short names with kit swatches, the score at that time, the match clock."""

    def __init__(self, match: Match, track: HalfTrack, height: int):
        self.names = [short_name(t) for t in match.teams]
        self.colours = [k.shirt for k in match.kits]
        self.base = np.zeros(2, int)
        for half in match.halves:
            if half.half < track.half:
                self.base += self._goals(half.events, math.inf)
        self.events = track.events
        self.clock_start = (track.half - 1) * 45 * 60
        self.font = _font(max(8, height // 20))
        self.cache: dict[str, Image.Image] = {}

    @staticmethod
    def _goals(events: list[Event], until: float) -> np.ndarray:
        goals = np.zeros(2, int)
        for event in events:
            team = scoring_team(event)
            if team is not None and event.time <= until:
                goals[team] += 1
        return goals

    def text(self, t: float) -> str:
        home, away = self.base + self._goals(self.events, t)
        clock = int(self.clock_start + t)
        return f"{self.names[0]} {home}-{away} {self.names[1]}  {clock // 60:02d}:{clock % 60:02d}"

    def patch(self, t: float) -> Image.Image:
        text = self.text(t)
        if text not in self.cache:
            self.cache[text] = self._draw(text)
        return self.cache[text]

    def _draw(self, text: str) -> Image.Image:
        left, top, right, bottom = self.font.getbbox(text)
        pad, swatch = 3, max(3, (bottom - top) // 2)
        img = Image.new("RGB", (right + 2 * pad + 2 * swatch + 4, bottom + 2 * pad), (14, 22, 48))
        canvas = ImageDraw.Draw(img)
        canvas.rectangle((0, 0, swatch - 1, img.height - 1), fill=self.colours[0])
        canvas.rectangle((img.width - swatch, 0, img.width - 1, img.height - 1), fill=self.colours[1])
        canvas.text((swatch + pad, pad), text, font=self.font, fill=(255, 255, 255))
        return img


def replay_banner(img: Image.Image) -> None:
    """A bold magenta frame and a 'REPLAY' band: unmistakable even at 64x64 pixels."""
    canvas = ImageDraw.Draw(img)
    w, h = img.size
    border = max(2, h // 40)
    canvas.rectangle((0, 0, w - 1, h - 1), outline=REPLAY_COLOUR, width=border)
    font = _font(max(10, h // 9))
    band = h // 6
    canvas.rectangle((0, 0, w - 1, band), fill=REPLAY_COLOUR)
    canvas.text((w // 2, band // 2), "REPLAY", font=font, fill=(255, 255, 255), anchor="mm")


# ---------------------------------------------------------------- replays

def replay_time(shot: Shot, t: float) -> float:
    """Video time a replay shows at time t: the stretch just before the cut, at half speed."""
    return shot.start - (shot.end - t) / 2


def replay_cameras(track: HalfTrack, shot: Shot, times: np.ndarray, width: int, height: int) -> list[Camera]:
    """A low camera across the pitch, or high behind the nearer goal, tightly on the ball, steadied."""
    ball = np.nan_to_num(at_times(track.ball, track.rate, np.array([replay_time(shot, t) for t in times]))[:, :2])
    centre = ball.mean(axis=0)
    if abs(centre[0]) > 30:   # behind that goal, looking back up the pitch
        position = np.array([np.sign(centre[0]) * (pitch.HALF_L + 9), 0.3 * centre[1], -9.0])
    else:                     # from the far side, low: the mirror of the main camera's view
        position = np.array([centre[0] - 6, -pitch.HALF_W - 10, -5.0])
    aim = ball[0].copy()
    alpha = _smoothing(0.5, float(times[1] - times[0]) if len(times) > 1 else 1.0)
    cameras = []
    for b in ball:
        aim += alpha * (b - aim)
        cameras.append(_looking_at(position, aim, 16.0, width, height))
    return cameras


# ---------------------------------------------------------------- close-ups

def _crowd(img: Image.Image, box, rng: np.random.Generator, colours, cell: int) -> None:
    """Blocks of supporters' colours: what a crowd looks like out of focus."""
    x0, y0, x1, y1 = box
    rows, cols = -(-(y1 - y0) // cell), -(-(x1 - x0) // cell)
    palette = np.array([*colours, (60, 60, 70), (150, 140, 130), (220, 190, 160)], float)
    blocks = palette[rng.integers(0, len(palette), (rows, cols))] * rng.uniform(0.4, 1.0, (rows, cols, 1))
    pixels = blocks.astype(np.uint8).repeat(cell, 0).repeat(cell, 1)[: y1 - y0, : x1 - x0]   # [h, w, 3]
    img.paste(Image.fromarray(pixels), (x0, y0))


def _grass(canvas: ImageDraw.ImageDraw, box, band: int) -> None:
    x0, y0, x1, y1 = box
    canvas.rectangle(box, fill=GRASS)
    for x in range(x0, x1, 2 * band):
        canvas.rectangle((x, y0, x + band - 1, y1), fill=GRASS_LIGHT)


def _big_figure(canvas: ImageDraw.ImageDraw, u: float, v: float, s: float, look: Look,
                arms: str = "down") -> tuple[float, float]:
    """A large standing figure (feet at (u, v), s px per metre); returns the raised hand's position."""
    for left, right in ((-0.16, -0.03), (0.03, 0.16)):   # a close-up is big enough for two legs
        canvas.rectangle((u + left * s, v - 0.5 * s, u + right * s, v), fill=look.socks)
    for (bottom, top, left, right), slot in FIGURE_PARTS[1:3]:
        canvas.rectangle((u + left * s, v - top * s, u + right * s, v - bottom * s), fill=getattr(look, slot))
    canvas.ellipse((u - 0.13 * s, v - 1.8 * s, u + 0.13 * s, v - 1.5 * s), fill=look.skin)
    shoulder, reach = v - 1.45 * s, 0.6 * s
    hand = (u + 0.45 * s, shoulder - reach)
    if arms == "up":
        for sign in (-1, 1):
            canvas.line((u + sign * 0.22 * s, shoulder, u + sign * 0.5 * s, shoulder - reach), fill=look.shirt,
                        width=max(2, round(0.1 * s)))
    else:
        canvas.line((u - 0.28 * s, shoulder, u - 0.3 * s, shoulder + reach), fill=look.shirt,
                    width=max(2, round(0.1 * s)))
        right_end = hand if arms == "raise" else (u + 0.3 * s, shoulder + reach)
        canvas.line((u + 0.28 * s, shoulder, *right_end), fill=look.shirt, width=max(2, round(0.1 * s)))
    return hand


@dataclass
class CutScene:
    """What a close-up needs to know: who is shown and in which colours."""

    cue: str
    team_look: Look
    subject: Person | None
    subject_look: Look
    referee_look: Look
    home_away: tuple[tuple[int, int, int], tuple[int, int, int]]
    numbers: tuple[int, int]                 # substitution board: off, on


def _scene_card(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, int(0.45 * h)), rng, scene.home_away, cell=max(4, h // 20))
    _grass(canvas, (0, int(0.45 * h), w, h), band=w // 5)
    _big_figure(canvas, 0.75 * w, 1.15 * h, 0.6 * h, scene.subject_look)
    hand = _big_figure(canvas, 0.4 * w, 1.35 * h, 0.48 * h, scene.referee_look, arms="raise")
    card = (250, 215, 0) if scene.cue == "yellow_card" else (215, 10, 20)
    cw, ch = 0.13 * h, 0.2 * h
    canvas.rectangle((hand[0] - cw / 2, hand[1] - 0.8 * ch, hand[0] + cw / 2, hand[1] + 0.2 * ch), fill=card,
                     outline=(0, 0, 0), width=2)


def _scene_substitution(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, h), rng, scene.home_away, cell=max(6, h // 10))
    _big_figure(canvas, 0.5 * w, 1.4 * h, 0.7 * h, Look((30, 30, 36), (30, 30, 36), (30, 30, 36), SKIN[1]))
    bx0, by0, bx1, by1 = 0.25 * w, 0.12 * h, 0.75 * w, 0.8 * h
    canvas.rectangle((bx0, by0, bx1, by1), fill=(8, 8, 8), outline=(90, 90, 90), width=3)
    font = _font(max(10, h // 4))
    canvas.text(((bx0 + bx1) / 2, by0 + 0.25 * (by1 - by0)), f"{scene.numbers[0]:02d}", font=font,
                fill=(255, 30, 30), anchor="mm")
    canvas.text(((bx0 + bx1) / 2, by0 + 0.75 * (by1 - by0)), f"{scene.numbers[1]:02d}", font=font,
                fill=(40, 255, 60), anchor="mm")


def _scene_celebration(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, int(0.4 * h)), rng, scene.home_away, cell=max(4, h // 24))
    _grass(canvas, (0, int(0.4 * h), w, h), band=w // 4)
    for _ in range(6):
        s = rng.uniform(0.35, 0.6) * h
        _big_figure(canvas, rng.uniform(0.1, 0.9) * w, rng.uniform(0.9, 1.25) * h, s, scene.team_look, arms="up")


def _scene_injury(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _grass(canvas, (0, 0, w, h), band=h // 3)
    look, s, u, v = scene.subject_look, 0.42 * h, 0.2 * w, 0.55 * h   # lying: feet left, head right
    canvas.rectangle((u, v - 0.14 * s, u + 0.5 * s, v + 0.14 * s), fill=look.socks)
    canvas.rectangle((u + 0.45 * s, v - 0.2 * s, u + 0.9 * s, v + 0.2 * s), fill=look.shorts)
    canvas.rectangle((u + 0.85 * s, v - 0.26 * s, u + 1.5 * s, v + 0.26 * s), fill=look.shirt)
    canvas.ellipse((u + 1.5 * s, v - 0.14 * s, u + 1.8 * s, v + 0.14 * s), fill=look.skin)
    medic = Look((240, 240, 240), (30, 30, 30), (30, 30, 30), SKIN[2])
    _big_figure(canvas, 0.82 * w, 0.95 * h, 0.4 * h, medic)
    kx, ky, k = 0.62 * w, 0.78 * h, 0.1 * h      # the medic's bag: a red cross on white
    canvas.rectangle((kx - k, ky - k, kx + k, ky + k), fill=(250, 250, 250))
    canvas.rectangle((kx - k * 0.7, ky - k * 0.22, kx + k * 0.7, ky + k * 0.22), fill=(220, 0, 0))
    canvas.rectangle((kx - k * 0.22, ky - k * 0.7, kx + k * 0.22, ky + k * 0.7), fill=(220, 0, 0))


def _scene_goal_net(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, h), rng, scene.home_away, cell=max(5, h // 14))
    step, width = max(6, h // 12), max(1, h // 110)
    for k in range(-h, w + h, step):   # the diamond mesh of the net
        canvas.line((k, 0, k + h, h), fill=(235, 235, 235), width=width)
        canvas.line((k, h, k + h, 0), fill=(235, 235, 235), width=width)
    post = max(6, w // 20)
    canvas.rectangle((0, 0, w - 1, post), fill=(250, 250, 250))
    canvas.rectangle((0, 0, post, h - 1), fill=(250, 250, 250))
    r, bu, bv = 0.17 * h, 0.55 * w, 0.68 * h
    canvas.ellipse((bu - r, bv - r, bu + r, bv + r), fill=BALL_COLOUR, outline=(0, 0, 0), width=2)
    for angle in np.linspace(0, 2 * np.pi, 5, endpoint=False) + rng.uniform(0, np.pi):
        pu, pv, pr = bu + 0.55 * r * math.cos(angle), bv + 0.55 * r * math.sin(angle), 0.22 * r
        canvas.ellipse((pu - pr, pv - pr, pu + pr, pv + pr), fill=(20, 20, 20))


def _scene_player(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, h), rng, scene.home_away, cell=max(8, h // 8))
    look = scene.subject_look
    canvas.rectangle((0.25 * w, 0.62 * h, 0.75 * w, h), fill=look.shirt)            # shoulders and chest
    canvas.rectangle((0.45 * w, 0.5 * h, 0.55 * w, 0.66 * h), fill=look.skin)        # neck
    canvas.ellipse((0.39 * w, 0.14 * h, 0.61 * w, 0.58 * h), fill=look.skin)
    canvas.chord((0.39 * w, 0.1 * h, 0.61 * w, 0.4 * h), 180, 360, fill=(40, 28, 20))   # hair
    if scene.subject is not None and scene.subject.shirt:
        bright = sum(look.shirt) > 380
        canvas.text((0.5 * w, 0.82 * h), str(scene.subject.shirt), font=_font(max(10, h // 5)), anchor="mm",
                    fill=(20, 20, 20) if bright else (250, 250, 250))


def _scene_crowd(img, canvas, rng, scene: CutScene) -> None:
    w, h = img.size
    _crowd(img, (0, 0, w, h), rng, scene.home_away, cell=max(3, h // 40))
    for k in range(3):   # flags in the team's colours, held up over the heads
        fx, fy = rng.uniform(0.05, 0.7) * w, rng.uniform(0.05, 0.5) * h
        colour = scene.home_away[k % 2]
        canvas.line((fx, fy, fx, fy + 0.5 * h), fill=(90, 70, 40), width=3)
        canvas.rectangle((fx, fy, fx + 0.25 * w, fy + 0.22 * h), fill=colour)
        canvas.rectangle((fx, fy + 0.08 * h, fx + 0.25 * w, fy + 0.14 * h), fill=(245, 245, 245))


SCENES = {
    "yellow_card": _scene_card, "red_card": _scene_card, "substitution": _scene_substitution,
    "celebration": _scene_celebration, "injury": _scene_injury, "goal_net": _scene_goal_net,
    "player": _scene_player, "crowd": _scene_crowd,
}


# ---------------------------------------------------------------- the broadcast

class Broadcast:
    """Renders the frames of one half: main camera, close-ups and replays."""

    def __init__(self, match: Match, track: HalfTrack, world: dict, seed: int):
        self.match, self.track = match, track
        self.width, self.height, self.fps = world["width"], world["height"], world["video_fps"]
        self.times = np.arange(round(track.duration * self.fps)) / self.fps
        self.rng = np.random.default_rng([seed, track.half, 5_003])   # what cuts show
        home, away = (kit.shirt for kit in match.kits)
        self.stadium = Stadium(fixture_rng(match, "stadium"), home, away)
        self.replay_stadium = Stadium(fixture_rng(match, "stadium"), home, away, lines=False, goals=False)
        self.looks = person_looks(match)
        self.part_colours = [look.part_colours() for look in self.looks]
        self.cameras = follow_play(track, self.times, main_camera_position(match), self.width, self.height)
        self.shots = shots_at(track.shots, self.times)
        self.xy = at_times(track.xy, track.rate, self.times)                # [F, people, 2]
        self.ball = at_times(track.ball, track.rate, self.times)            # [F, 3]
        self.scoreboard = Scoreboard(match, track, self.height)
        self.cut_cache: dict[Shot, tuple] = {}
        self.blank = Image.new("RGB", (self.width, self.height), ROOF)

    def true_cameras(self) -> list[dict | None]:
        return [None if is_cut(shot) else cam.to_dict() for shot, cam in zip(self.shots, self.cameras, strict=True)]

    def frame(self, i: int) -> Image.Image:
        shot, t = self.shots[i], float(self.times[i])
        if not is_cut(shot):
            img = self._main_frame(self.cameras[i], self.xy[i], self.ball[i], self.stadium)
        elif shot.view == "replay":   # the banner replaces the scoreboard
            img = self._replay_frame(shot, i)
            replay_banner(img)
            return img
        else:
            img = self._closeup_frame(shot, t)
        img.paste(self.scoreboard.patch(t), (max(2, self.width // 60), max(2, self.height // 40)))
        return img

    def _main_frame(self, camera: Camera, xy: np.ndarray, ball: np.ndarray, stadium: Stadium) -> Image.Image:
        img = self.blank.copy()
        canvas = ImageDraw.Draw(img)
        stadium.draw(canvas, camera)
        draw_people(canvas, camera, xy, self.part_colours)
        draw_ball(canvas, camera, ball)
        return img

    def _replay_frame(self, shot: Shot, i: int) -> Image.Image:
        if shot not in self.cut_cache:
            frames = np.flatnonzero([s is shot for s in self.shots])
            cams = replay_cameras(self.track, shot, self.times[frames], self.width, self.height)
            self.cut_cache[shot] = (frames[0], cams)
        first, cams = self.cut_cache[shot]
        t = replay_time(shot, float(self.times[i]))
        xy = at_times(self.track.xy, self.track.rate, np.array([t]))[0]    # [people, 2]
        ball = at_times(self.track.ball, self.track.rate, np.array([t]))[0]
        return self._main_frame(cams[i - first], xy, ball, self.replay_stadium)

    def _closeup_frame(self, shot: Shot, t: float) -> Image.Image:
        """A still composed once per shot, larger than the frame, seen through a slowly drifting window."""
        if shot not in self.cut_cache:
            margin = self.width // 12
            img = Image.new("RGB", (self.width + 2 * margin, self.height + 2 * margin), ROOF)
            cue = shot.cue if shot.cue in SCENES else "player"
            SCENES[cue](img, ImageDraw.Draw(img), self.rng, self._scene(shot, cue))
            self.cut_cache[shot] = (img, margin)
        img, margin = self.cut_cache[shot]
        progress = (t - shot.start) / max(shot.end - shot.start, 1e-6)
        dx, dy = round(2 * margin * progress), round(margin * (1 - 0.5 * progress))
        return img.crop((dx, dy, dx + self.width, dy + self.height))

    def _scene(self, shot: Shot, cue: str) -> CutScene:
        people = self.match.people
        subject = people[shot.subject] if shot.subject is not None else None
        team = shot.team if shot.team in (0, 1) else (subject.team if subject and subject.team in (0, 1) else 0)
        kit = self.match.kits[team]
        team_look = Look(kit.shirt, kit.shorts, kit.shirt, SKIN[0])
        referee = next((p for p in people if p.role == "referee"), None)
        return CutScene(
            cue=cue, team_look=team_look, subject=subject,
            subject_look=self.looks[subject.id] if subject else team_look,
            referee_look=self.looks[referee.id] if referee else Look(REFEREE, REFEREE, REFEREE, SKIN[1]),
            home_away=(self.match.kits[0].shirt, self.match.kits[1].shirt),
            numbers=self._substitution_numbers(shot, subject),
        )

    def _substitution_numbers(self, shot: Shot, subject: Person | None) -> tuple[int, int]:
        """Shirt numbers (off, on) of the substitution of the shot's subject (else the nearest one in time); the
        subject's number twice when the half has none."""
        subs = [e for e in self.track.events if e.kind == "substitution" and len(e.players) >= 2]
        if subs:
            event = min(subs, key=lambda e: (shot.subject not in e.players, abs(e.time - shot.start)))
            off, on = (self.match.people[p].shirt for p in event.players[:2])
            return off, on
        number = subject.shirt if subject else 0
        return number, number


def check_inputs(match: Match, track: HalfTrack, world: dict, out_path: Path) -> None:
    """Refuse tracks and sizes the renderer cannot draw, naming the video and the problem."""
    problems = []
    if world["width"] % 2 or world["height"] % 2:
        problems.append(f"world.width x height {world['width']}x{world['height']} must be even (yuv420p)")
    if track.xy.ndim != 3 or track.xy.shape[1:] != (len(match.people), 2):
        problems.append(f"track.xy has shape {track.xy.shape}, expected [N, {len(match.people)} people, 2]")
    if track.ball.shape != (len(track.xy), 3):
        problems.append(f"track.ball has shape {track.ball.shape}, expected [{len(track.xy)}, 3]")
    if not (track.rate > 0 and track.duration > 0):
        problems.append(f"track rate {track.rate} Hz and duration {track.duration} s must be positive")
    if problems:
        raise InputError(f"cannot render {out_path} (half {track.half}): " + "; ".join(problems))


def render_half(match: Match, track: HalfTrack, out_path: Path, world: dict, seed: int) -> list[dict | None]:
    """Render one half's broadcast to an H.264 video at `out_path` (written atomically).

    Returns, per video frame, the true main camera as `Camera.to_dict()`, or None during a cut."""
    out_path = Path(out_path)
    check_inputs(match, track, world, out_path)
    broadcast = Broadcast(match, track, world, seed)
    rate = Fraction(world["video_fps"]).limit_denominator(1000)
    with atomic_path(out_path, suffix=out_path.suffix) as tmp:
        with av.open(str(tmp), "w", options={"fflags": "+bitexact"}) as container:  # no random ids/dates
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = broadcast.width, broadcast.height, "yuv420p"
            # one thread: halves render in parallel processes, and a single-threaded x264 is bit-exact
            stream.options = {"crf": str(world["crf"]), "preset": world["preset"], "threads": "1"}
            for i in tqdm(range(len(broadcast.times)), desc=f"render {out_path.name}", unit="frame", leave=False):
                frame = av.VideoFrame.from_image(broadcast.frame(i))
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return broadcast.true_cameras()
