"""The pitch model (IFAB dimensions) in SoccerNet's pitch frame.

Metres, origin at the centre spot, x along the length (left goal line at -52.5), y across with +34 the near
touchline (the main camera's side), z pointing DOWN (heights are negative), as in SoccerNet's calibration.
"""

from __future__ import annotations

import numpy as np

LENGTH, WIDTH = 105.0, 68.0
HALF_L, HALF_W = LENGTH / 2, WIDTH / 2
CIRCLE_R = 9.15
PENALTY_DEPTH, PENALTY_WIDTH = 16.5, 40.32
GOAL_AREA_DEPTH, GOAL_AREA_WIDTH = 5.5, 18.32
PENALTY_SPOT = 11.0
GOAL_WIDTH, GOAL_HEIGHT = 7.32, 2.44
CORNER_R = 1.0


def _segment(a, b, step):
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = max(2, int(np.ceil(np.linalg.norm(b - a) / step)) + 1)
    return a + (b - a) * np.linspace(0, 1, n)[:, None]


def _arc(centre, radius, start, stop, step):
    n = max(3, int(np.ceil(radius * abs(stop - start) / step)) + 1)
    t = np.linspace(start, stop, n)
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def line_polylines(step: float = 0.5) -> dict[str, np.ndarray]:
    """Every painted line as a named polyline of ground points [n, 2], sampled about every `step` metres."""
    L, W = HALF_L, HALF_W
    lines = {
        "touchline_far": _segment((-L, -W), (L, -W), step),
        "touchline_near": _segment((-L, W), (L, W), step),
        "goal_line_left": _segment((-L, -W), (-L, W), step),
        "goal_line_right": _segment((L, -W), (L, W), step),
        "halfway": _segment((0, -W), (0, W), step),
        "centre_circle": _arc((0, 0), CIRCLE_R, 0, 2 * np.pi, step),
    }
    for side, sx in (("left", -1), ("right", 1)):
        gx = sx * L
        boxes = (("penalty", PENALTY_DEPTH, PENALTY_WIDTH), ("goal_area", GOAL_AREA_DEPTH, GOAL_AREA_WIDTH))
        for name, depth, width in boxes:
            x_in = gx - sx * depth
            lines[f"{name}_{side}"] = np.concatenate([
                _segment((gx, -width / 2), (x_in, -width / 2), step),
                _segment((x_in, -width / 2), (x_in, width / 2), step)[1:],
                _segment((x_in, width / 2), (gx, width / 2), step)[1:],
            ])
        # the penalty arc: the part of the circle around the spot that lies outside the penalty area
        spot_x = gx - sx * PENALTY_SPOT
        half_angle = np.arccos((PENALTY_DEPTH - PENALTY_SPOT) / CIRCLE_R)
        facing = 0.0 if sx < 0 else np.pi
        lines[f"penalty_arc_{side}"] = _arc((spot_x, 0), CIRCLE_R, facing - half_angle, facing + half_angle, step)
    for cx in (-L, L):
        for cy in (-W, W):
            a0 = np.arctan2(-np.sign(cy), -np.sign(cx))
            lines[f"corner_{'l' if cx < 0 else 'r'}{'f' if cy < 0 else 'n'}"] = _arc(
                (cx, cy), CORNER_R, a0 - np.pi / 4, a0 + np.pi / 4, step / 4)
    return lines


def line_points(step: float = 0.5) -> np.ndarray:
    """All line samples [M, 2] (the model a camera is fitted to)."""
    return np.concatenate(list(line_polylines(step).values()))


def goal_posts(side: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The goal frame at x = side*52.5 as 3-D segments (z down): two posts and the crossbar."""
    x = side * HALF_L
    yl, yr, h = -GOAL_WIDTH / 2, GOAL_WIDTH / 2, -GOAL_HEIGHT
    p = lambda y, z: np.array([x, y, z])
    return [(p(yl, 0), p(yl, h)), (p(yr, 0), p(yr, h)), (p(yl, h), p(yr, h))]


# ---- zones used by the commentary (and by anyone describing a position) ----

def in_penalty_area(x: float, y: float, goal_side: int) -> bool:
    """Inside the penalty area in front of the goal at x = goal_side*52.5."""
    return goal_side * x >= HALF_L - PENALTY_DEPTH and abs(y) <= PENALTY_WIDTH / 2 and abs(x) <= HALF_L


def distance_to_goal(x: float, y: float, goal_side: int) -> float:
    return float(np.hypot(goal_side * HALF_L - x, y))


def on_pitch(x, y, margin: float = 0.0):
    return (np.abs(x) <= HALF_L + margin) & (np.abs(y) <= HALF_W + margin)
