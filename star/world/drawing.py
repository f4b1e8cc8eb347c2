"""Drawing the 3-D world through a `Camera`: the stadium, the people and the ball, in painter's order (far to
near), anything closer to the camera than NEAR clipped away before projection.

Pixel convention (shared with `Camera`): pixel (i, j) covers u in [j, j+1), v in [i, i+1). A person's feet touch
the ground at the projected ground point: the figure's lowest row is round(v) - 1, so its bottom edge is v.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from star.geometry import pitch
from star.geometry.camera import Camera
from star.world.camerawork import fixture_rng
from star.world.match import Match

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

