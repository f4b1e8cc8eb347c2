"""The camera model of the classical backend and its fit to a frame's lines (steps 2, 3 and 5).

A camera is theta = (pan, tilt, log focal) at a rig position [3], as star.geometry.camera.Camera: geometry with
derivatives, what the fit needs of one frame (`Observation`), the two chamfer terms, the robust Levenberg-Marquardt
solver, single-frame and joint rig fits, and the numbers of the acceptance test (`summarise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.spatial import cKDTree

from star.geometry import pitch
from star.geometry.camera import Camera
from star.positions.classical.masks import frame_masks

FIELD_RES = 0.1          # m per cell of the pitch-line distance field
FIELD_MARGIN = 15.0      # m of field beyond the touch and goal lines
DT_CAP = 12.0            # px: a distance larger than this says "no line here", whatever its size
WIDE_CAP = 30.0          # px: the same for the first, wide-basin fit after a cut
SEARCH_CAP = 64.0        # px: the same for the first, coarsest scoring of the search grid
INLIER_PX = 2.0          # px: a line pixel (or model point) this close to the other side is explained
MAX_LINE_SAMPLES = 120   # line pixels per frame used in the fit
ROBUST_SCALE = 1.5       # px: soft-L1 scale of the fit
THETA_SCALE = np.array([0.05, 0.05, 0.1])   # typical steps of pan, tilt (rad) and log focal in a fit
MIN_VISIBLE = 15         # model points (1.5 m apart) a calibrated view must show


# ---------------------------------------------------------------- lookup tables


def _bilinear(table: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """table [A, B, C] at fractional (rows, cols) [n] -> [n, C], clamped to the border."""
    a, b, c = table.shape
    rows = np.minimum(np.maximum(rows, 0), a - 1.001)
    cols = np.minimum(np.maximum(cols, 0), b - 1.001)
    r0, c0 = rows.astype(np.intp), cols.astype(np.intp)
    fr, fc = rows - r0, cols - c0
    i = r0 * b + c0
    corners = np.take(table.reshape(-1, c), np.concatenate([i, i + 1, i + b, i + b + 1]), axis=0)   # [4n, C]
    corners = corners.reshape(4, len(i), c)
    return ((corners[0] * (1 - fc[:, None]) + corners[1] * fc[:, None]) * (1 - fr[:, None])
            + (corners[2] * (1 - fc[:, None]) + corners[3] * fc[:, None]) * fr[:, None])


@dataclass(frozen=True)
class PitchModel:
    points: np.ndarray    # [M, 2] model line samples (m), what is projected into the image
    coarse: np.ndarray    # [m, 2] a sparser subset for the grid search
    table: np.ndarray     # [X, Y, 3] distance (m) to the nearest line and its unit gradient, per FIELD_RES cell
                          # of the quarter x, y >= 0 (the lines are symmetric about both axes)

    def lookup(self, xy: np.ndarray) -> np.ndarray:
        """[n, 3]: distance (m) to the nearest line and the unit direction away from it, at ground points."""
        cells = np.abs(xy) / FIELD_RES
        near = _bilinear(self.table, cells[:, 0], cells[:, 1])
        near[:, 1:] *= np.where(xy < 0, -1.0, 1.0)                                      # mirrored back
        return near


@lru_cache(maxsize=1)
def pitch_model() -> PitchModel:
    # a quarter is exact: of a line and its mirror images, the one in a point's own quarter is the nearest
    shape = np.ceil((np.array([pitch.HALF_L, pitch.HALF_W]) + FIELD_MARGIN) / FIELD_RES).astype(int) + 1
    free = np.ones(shape, bool)
    idx = np.round(np.abs(pitch.line_points(FIELD_RES / 2)) / FIELD_RES).astype(int)
    free[idx[:, 0], idx[:, 1]] = False
    field = ndimage.distance_transform_edt(free) * FIELD_RES
    grad = np.stack(np.gradient(field), -1)                                          # [X, Y, 2]
    grad /= np.maximum(np.linalg.norm(grad, axis=-1, keepdims=True), 1e-6)
    table = np.concatenate([field[..., None], grad], -1).astype(np.float32)
    points = pitch.line_points(1.5)
    return PitchModel(points, points[::3], table)


# ---------------------------------------------------------------- geometry
# A camera is theta = (pan, tilt, log focal) at a rig position [3], as star.geometry.camera.Camera.


def _axes(pan, tilt) -> np.ndarray:
    """Rows right, down, forward of cameras [..., 3, 3] for arrays of pan and tilt."""
    cp, sp, ct, st = np.cos(pan), np.sin(pan), np.cos(tilt), np.sin(tilt)
    zero = np.zeros_like(cp)
    return np.stack([np.stack([cp, sp, zero], -1), np.stack([-st * sp, st * cp, ct], -1),
                     np.stack([sp * ct, -cp * ct, st], -1)], -2)


@lru_cache(maxsize=4)
def _axes_with_derivatives(pan: float, tilt: float) -> np.ndarray:
    """Rows right, down, forward of one camera, then their derivatives by pan, then by tilt [9, 3] (cached:
    a fit asks for the same camera twice per step)."""
    cp, sp, ct, st = math.cos(pan), math.sin(pan), math.cos(tilt), math.sin(tilt)
    axes = np.array([[cp, sp, 0.0], [-st * sp, st * cp, ct], [sp * ct, -cp * ct, st],
                     [-sp, cp, 0.0], [-st * cp, -st * sp, 0.0], [cp * ct, sp * ct, 0.0],
                     [0.0, 0.0, 0.0], [-ct * sp, ct * cp, -st], [-sp * st, cp * st, ct]])
    axes.flags.writeable = False
    return axes


@dataclass
class View:
    """Ground points seen by one camera, with first derivatives."""

    uv: np.ndarray              # [n, 2] pixels
    depth: np.ndarray           # [n]
    d_params: np.ndarray        # [n, 2, p] d(u, v) / d(pan, tilt, log focal[, rig x, y, z])


def view(theta: np.ndarray, rig: np.ndarray, xy: np.ndarray, size, with_rig: bool = False) -> View:
    """Ground points [n, 2] seen by camera theta at the rig, with derivatives (by the rig position too if
    `with_rig`). Written out per component: these arrays are small, and numpy's per-call cost dominates."""
    axes = _axes_with_derivatives(float(theta[0]), float(theta[1]))
    focal = math.exp(theta[2])
    d = np.empty((3, len(xy)))                                                       # [3, n] from the rig
    d[:2] = xy.T
    d[0] -= rig[0]
    d[1] -= rig[1]
    d[2] = -rig[2]
    X, Y, Z, Xp, Yp, Zp, _, Yt, Zt = axes @ d                                         # [n] each
    inv_z = 1 / np.maximum(Z, 1e-3)
    scale = focal * inv_z
    u, v = X * scale, Y * scale                                                      # px from the centre
    uv = np.empty((len(xy), 2))
    uv[:, 0] = u + size[0] / 2
    uv[:, 1] = v + size[1] / 2
    d_params = np.empty((len(xy), 2, 6 if with_rig else 3))
    d_params[:, 0, 0] = scale * Xp - u * Zp * inv_z
    d_params[:, 0, 1] = -u * Zt * inv_z
    d_params[:, 0, 2] = u
    d_params[:, 1, 0] = scale * Yp - v * Zp * inv_z
    d_params[:, 1, 1] = scale * Yt - v * Zt * inv_z
    d_params[:, 1, 2] = v
    if with_rig:                        # d(u, v) / d(world point), and the rig position moves the opposite way
        x_z, y_z = X * inv_z, Y * inv_z
        for k in range(3):
            d_params[:, 0, 3 + k] = -scale * (axes[0, k] - x_z * axes[2, k])
            d_params[:, 1, 3 + k] = -scale * (axes[1, k] - y_z * axes[2, k])
    return View(uv, Z, d_params)


def project_many(thetas: np.ndarray, rig: np.ndarray, xy: np.ndarray, size) -> tuple[np.ndarray, ...]:
    """Ground points [n, 2] -> pixel columns u, rows v and depths, each [K, n], for cameras thetas [K, 3]."""
    axes = _axes(thetas[:, 0], thetas[:, 1])                                         # [K, 3, 3]
    d = np.concatenate([xy, np.zeros((len(xy), 1))], 1) - rig                        # [n, 3]
    cam = (axes.reshape(-1, 3) @ d.T).reshape(len(thetas), 3, len(xy))               # [K, 3, n] one product
    depth = cam[:, 2]
    scale = np.exp(thetas[:, 2])[:, None] / np.maximum(depth, 1e-3)
    return cam[:, 0] * scale + size[0] / 2, cam[:, 1] * scale + size[1] / 2, depth


def backproject_many(thetas: np.ndarray, rig: np.ndarray, uv: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    """Pixels [n, 2] -> ground x, y [K, n] each (NaN above the horizon) for cameras thetas [K, 3]."""
    axes = _axes(thetas[:, 0], thetas[:, 1])                                         # [K, 3, 3]
    focal = np.exp(thetas[:, 2])[:, None]
    a = (uv[:, 0] - size[0] / 2) / focal                                             # [K, n]
    b = (uv[:, 1] - size[1] / 2) / focal
    # the ray through each pixel, per world axis
    ray = [a * axes[:, 0, k:k + 1] + b * axes[:, 1, k:k + 1] + axes[:, 2, k:k + 1] for k in range(3)]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -rig[2] / ray[2]
        s[~(s > 0)] = np.nan
    return rig[0] + s * ray[0], rig[1] + s * ray[1]


def to_camera(theta, rig, size) -> Camera:
    return Camera(float(rig[0]), float(rig[1]), float(rig[2]), float(theta[0]), float(theta[1]),
                  float(np.exp(theta[2])), int(size[0]), int(size[1]))


# ---------------------------------------------------------------- one frame


@dataclass
class Observation:
    """What the calibration needs from one frame."""

    size: tuple[int, int]       # width, height
    line_pixels: np.ndarray     # [count, 2] centres (u, v) of all line pixels
    line_uv: np.ndarray         # [n, 2] the sample of them the fit back-projects
    grass_share: float
    grass: np.ndarray           # [H, W] bool
    lines: np.ndarray           # [H, W] bool

    @property
    def line_count(self) -> int:
        return len(self.line_pixels)

    @cached_property
    def line_offsets(self) -> np.ndarray:
        """[2, n] the sampled line pixels' (u, v) from the image centre."""
        return np.ascontiguousarray((self.line_uv - np.array(self.size) / 2).T)

    @cached_property
    def line_tree(self) -> cKDTree:
        """The line pixels for nearest-neighbour queries (exact distances, and no transform of the image)."""
        return cKDTree(self.line_pixels)

    @cached_property
    def pooled(self) -> np.ndarray:
        """The line mask at half resolution [H/2, W/2] (2x2 max-pooled)."""
        h, w = (s // 2 * 2 for s in self.lines.shape)
        m = self.lines[:h, :w]
        return m[0::2, 0::2] | m[1::2, 0::2] | m[0::2, 1::2] | m[1::2, 1::2]

    @cached_property
    def dt(self) -> np.ndarray:
        """[H/2, W/2, 3]: full-resolution px to the nearest line pixel (up to SEARCH_CAP), and its derivatives by
        full-resolution row and column; measured at half resolution (4x cheaper; the line-pixel term keeps the
        fit's precision) as a chessboard distance (4x faster than the exact one, and the fit only needs it to
        grow away from the lines)."""
        dt = np.full(self.pooled.shape, SEARCH_CAP, np.float32)
        if self.line_count:
            dt = np.minimum(2 * ndimage.distance_transform_cdt(~self.pooled, "chessboard"), SEARCH_CAP)
        table = np.zeros((*dt.shape, 3), np.float32)                                # distance, d/drow, d/dcol
        table[..., 0] = dt
        table[1:-1, :, 1] = (dt[2:] - dt[:-2]) / 4
        table[:, 1:-1, 2] = (dt[:, 2:] - dt[:, :-2]) / 4
        return table

    @cached_property
    def spectrum(self) -> np.ndarray:
        """2-D FFT of the line mask at half resolution (2x2 max-pooled), for `image_shift`."""
        return scipy.fft.rfft2(self.pooled.astype(np.float32), s=_fft_shape(self.size))

    @classmethod
    def from_frame(cls, rgb: np.ndarray) -> Observation:
        grass, lines = frame_masks(rgb)
        rows, cols = np.divmod(np.flatnonzero(lines), lines.shape[1])                    # (2-D nonzero is slow)
        pixels = np.stack([cols + 0.5, rows + 0.5], 1)                                  # [count, 2] (u, v)
        pick = np.linspace(0, len(rows) - 1, min(len(rows), MAX_LINE_SAMPLES)).astype(int)
        return cls((rgb.shape[1], rgb.shape[0]), pixels, pixels[pick], float(grass.mean()), grass, lines)


def _fft_shape(size: tuple[int, int]) -> tuple[int, int]:
    """FFT size of a half-resolution mask: zero-padded to lengths with small factors (199 = 398 / 2 is prime,
    and an FFT of a prime length is 3x slower)."""
    return scipy.fft.next_fast_len(size[1] // 2, real=True), scipy.fft.next_fast_len(size[0] // 2, real=True)


def image_shift(before: np.ndarray, after: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(du, dv) px the line pattern moved between two frames, by phase correlation of their `spectrum`s."""
    cross = after * np.conj(before)
    surface = scipy.fft.irfft2(cross / (np.abs(cross) + 1e-6), s=_fft_shape(size))
    peak = np.array(np.unravel_index(np.argmax(surface), surface.shape))               # row, col
    peak = np.where(peak < np.array(surface.shape) // 2, peak, peak - np.array(surface.shape))   # wrap around
    return 2.0 * peak[::-1]


def line_term(theta: np.ndarray, rig: np.ndarray, obs: Observation, with_rig: bool = False,
              cap: float = DT_CAP) -> tuple[np.ndarray, np.ndarray]:
    """The first chamfer term, line pixels -> model: px [n] and derivatives [n, p] by (pan, tilt, log focal[,
    rig x, y, z]). Each sampled line pixel is back-projected to the ground, measured in metres to the nearest
    model line, and turned into px along the line's normal by the local Jacobian of the projection. A pixel's
    own coordinates and its viewing ray give the derivatives directly (no projection of the ground point)."""
    axes = _axes_with_derivatives(float(theta[0]), float(theta[1]))
    focal = math.exp(theta[2])
    du, dv = obs.line_offsets                                                        # [n] px from the centre
    a, b = du / focal, dv / focal
    rays = axes[:2].T @ np.stack([a, b]) + axes[2][:, None]                          # [3, n] camera (a, b, 1)
    # the ray reaches z = 0 ahead (s > 0, s the depth) when it heads towards the ground; s = 0 marks the others
    s = -rig[2] / np.where(rays[2] * -rig[2] > 0, rays[2], np.inf)
    ok = s > 0                                                                       # below the horizon
    s_ok = s[ok]
    ground = (rig[:2, None] + s_ok * rays[:2, ok]).T                                 # [n, 2]
    turn = axes[3:] @ rays[:, ok]                                                    # [6, n]: by pan, by tilt
    a, b, du, dv = a[ok], b[ok], du[ok], dv[ok]
    # d(u, v) / d(pan, tilt, log focal[, rig]) of the point fixed on the ground
    d_u = [focal * turn[0] - du * turn[2], -du * turn[5], du]
    d_v = [focal * turn[1] - dv * turn[2], focal * turn[4] - dv * turn[5], dv]
    # d(u, v) / d(ground point): scale (row - (a or b) * forward), scale = focal / depth
    scale = focal / s_ok
    jg = [[scale * (axes[i, k] - c * axes[2, k]) for k in range(3 if with_rig else 2)] for i, c in ((0, a), (1, b))]
    if with_rig:                                                                     # the rig moves the other way
        d_u += [-j for j in jg[0]]
        d_v += [-j for j in jg[1]]
    (j00, j01, *_), (j10, j11, *_) = jg

    near = pitch_model().lookup(ground)                                              # [n, 3] metres, direction
    norm = np.maximum(np.hypot(near[:, 1], near[:, 2]), 1e-6)
    n0, n1 = near[:, 1] / norm, near[:, 2] / norm
    det = j00 * j11 - j01 * j10
    det = np.where(np.abs(det) > 1e-9, det, 1e-9)
    # n^T Jg^-1 (closed-form 2x2 inverse): ground motion along the normal per px of image motion
    row0, row1 = (n0 * j11 - n1 * j10) / det, (n1 * j00 - n0 * j01) / det
    stretch = np.hypot(j00 * n0 + j01 * n1, j10 * n0 + j11 * n1)
    dist = near[:, 0] * stretch
    # the pixel is fixed: dp = -Jg^-1 (Jparams dparams)
    jac = -stretch * (row0 * np.array(d_u) + row1 * np.array(d_v))                   # [p, n]
    jac[:, dist >= cap] = 0.0
    line_r = np.full(len(ok), cap)
    line_j = np.zeros((len(ok), len(d_u)))
    line_r[ok] = np.minimum(dist, cap)
    line_j[ok] = jac.T
    return line_r, line_j


def terms(theta: np.ndarray, rig: np.ndarray, obs: Observation, points: np.ndarray, with_rig: bool = False,
          cap: float = DT_CAP):
    """Both chamfer terms of a camera, with derivatives by (pan, tilt, log focal[, rig x, y, z]): line pixels ->
    model (`line_term`); model points [M, 2] -> line pixels by the distance transform: px [M] and [M, p] (0
    outside the image); and which model points are inside the image [M]. Distances stop at `cap`."""
    line_r, line_j = line_term(theta, rig, obs, with_rig, cap)
    v = view(theta, rig, points, obs.size, with_rig)
    w, h = obs.size
    inside = (v.depth > 1) & (v.uv[:, 0] >= 0) & (v.uv[:, 0] <= w) & (v.uv[:, 1] >= 0) & (v.uv[:, 1] <= h)
    near = _bilinear(obs.dt, v.uv[:, 1] / 2 - 0.5, v.uv[:, 0] / 2 - 0.5)              # [M, 3] half resolution
    model_r = np.where(inside, np.minimum(near[:, 0], cap), 0.0)
    # DT gradient by u, v
    model_j = near[:, 2:3] * v.d_params[:, 0] + near[:, 1:2] * v.d_params[:, 1]        # [M, p]
    model_j[~inside | (near[:, 0] >= cap)] = 0.0
    return line_r, line_j, model_r, model_j, inside


@dataclass
class Fit:
    theta: np.ndarray           # pan, tilt, log focal
    cost: float                 # mean robust cost per residual
    median_px: float            # median px from a line pixel to the projected model
    explained: float            # share of line pixels within INLIER_PX of the model
    matched: float              # share of model points in the image within INLIER_PX of a line pixel
    visible: int                # model points in the image


def soft_l1(r: np.ndarray) -> np.ndarray:
    """Robust cost of residuals r (px): quadratic below ROBUST_SCALE, then linear."""
    return 2 * (np.sqrt(1 + (r / ROBUST_SCALE) ** 2) - 1)


def summarise(theta, rig, obs: Observation, cap: float = DT_CAP, line_r: np.ndarray | None = None) -> Fit:
    """The fit's cost and the numbers of the acceptance test (`line_r`: the line pixels' residuals at theta, when
    known). Model points in the picture are measured to the nearest line pixel exactly (a k-d tree of the line
    pixels: no distance transform needed on most frames)."""
    if line_r is None:
        line_r = line_term(theta, rig, obs, cap=cap)[0]
    points = pitch_model().points
    u, v, depth = project_many(np.asarray(theta, float)[None], rig, points, obs.size)   # [1, M] each
    w, h = obs.size
    inside = (depth[0] > 1) & (u[0] >= 0) & (u[0] <= w) & (v[0] >= 0) & (v[0] <= h)
    model_r = np.full(np.count_nonzero(inside), cap)
    if len(model_r) and obs.line_count:
        model_r = np.minimum(obs.line_tree.query(np.stack([u[0, inside], v[0, inside]], 1),
                                                 distance_upper_bound=cap)[0], cap)
    r = np.concatenate([line_r, model_r])
    cost = float(np.mean(soft_l1(r))) if len(r) else np.inf
    matched = float(np.mean(model_r < INLIER_PX)) if len(model_r) else 0.0
    return Fit(np.asarray(theta, float), cost, float(np.median(line_r)) if len(line_r) else np.inf,
               float(np.mean(line_r < INLIER_PX)) if len(line_r) else 0.0, matched, len(model_r))


def robust_least_squares(evaluate, x0: np.ndarray, x_scale: np.ndarray, max_evals: int,
                         xtol: float = 1e-2, ftol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Minimise sum(soft_l1(r)) by Levenberg-Marquardt, returning x and its residuals; `evaluate(x)` gives
    residuals [r] and their Jacobian [r, p] together. The robust cost's Gauss-Newton model keeps its curvature
    term (as scipy's least_squares does): large residuals flatten it, so a start far from the lines takes long
    steps. scipy's least_squares minimises the same cost, but its overhead per call and per step is several
    times the cost of these small problems (3 parameters, a few hundred residuals).
    Stops when a step moves no parameter by more than `xtol` of its `x_scale`, or lowers the cost (or would,
    by the model) by less than `ftol` of it."""
    x = np.asarray(x0, float)
    r, jac = evaluate(x)
    cost = soft_l1(r).sum()
    damping = 0.1
    for _ in range(max_evals - 1):
        grow = 1 + (r / ROBUST_SCALE) ** 2
        slope = 1 / np.sqrt(grow)                                      # d soft_l1 / dz, z = (r / scale)^2
        curvature = np.maximum(slope / grow, 1e-9)                     # slope + 2 z d(slope)/dz
        scaled = jac * x_scale                                                          # [r, p]
        normal = scaled.T @ (scaled * curvature[:, None])                              # [p, p]
        gradient = scaled.T @ (slope * r)
        try:
            step = -np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-9), gradient)
        except np.linalg.LinAlgError:
            break
        # the cost's decrease the quadratic model predicts (cost = sum 2 (sqrt(1 + z) - 1))
        predicted = -(gradient @ step + step @ normal @ step / 2) * 2 / ROBUST_SCALE ** 2
        if predicted < ftol * cost or np.abs(step).max() < xtol:
            break
        trial = x + step * x_scale
        r_trial, jac_trial = evaluate(trial)
        cost_trial = soft_l1(r_trial).sum()
        if cost_trial < cost:
            done = cost - cost_trial < ftol * cost
            x, r, jac, cost = trial, r_trial, jac_trial, cost_trial
            damping = max(damping / 4, 1e-7)
            if done:
                break
        else:
            damping = 4 * max(damping, 0.25)                           # from the first miss: about half the step
    return x, r


class _Problem:
    """Stacked residuals and Jacobian of both chamfer terms of frames sharing one rig; `joint` also fits the rig
    position."""

    def __init__(self, observations: list[Observation], rig, thetas: list[np.ndarray], joint: bool, cap: float):
        self.observations, self.rig, self.joint, self.cap = observations, np.asarray(rig, float), joint, cap
        self.points, self.weights = [], []
        model = pitch_model().points
        for theta, obs in zip(thetas, observations, strict=True):
            # only model points near the starting view can come into it during the fit
            u, v, depth = project_many(np.asarray(theta, float)[None], self.rig, model, obs.size)
            offset = np.maximum(np.abs(u[0] / obs.size[0] - 0.5), np.abs(v[0] / obs.size[1] - 0.5))   # [M]
            near = (depth[0] > 1) & (offset < 0.8)                                   # 0 centre, 0.5 edge
            self.points.append(model[near])
            # balance the two terms: as many line samples as model points in view
            seen = int((near & (offset <= 0.5)).sum())
            self.weights.append(np.sqrt(max(len(obs.line_uv), 1) / max(seen, MIN_VISIBLE)))

    def split(self, params):
        k = len(self.observations)
        rig = params[:3] if self.joint else self.rig
        return rig, (params[3:] if self.joint else params).reshape(k, 3)            # [k, 3]

    def evaluate(self, params) -> tuple[np.ndarray, np.ndarray]:
        rig, thetas = self.split(params)
        shift = 3 if self.joint else 0
        residuals, rows = [], []
        frames = zip(thetas, self.observations, self.points, self.weights, strict=True)
        for i, (theta, obs, points, weight) in enumerate(frames):
            line_r, line_j, model_r, model_j, _ = terms(theta, rig, obs, points, self.joint, self.cap)
            jac = np.concatenate([line_j, weight * model_j])                             # [r, 3 or 6]
            if len(thetas) == 1 and not self.joint:
                block = jac
            else:
                block = np.zeros((len(jac), shift + 3 * len(thetas)))
                block[:, shift + 3 * i: shift + 3 * i + 3] = jac[:, :3]
                block[:, :shift] = jac[:, 3:]
            residuals.append(np.concatenate([line_r, weight * model_r]))
            rows.append(block)
        return np.concatenate(residuals), np.concatenate(rows)

    def solve(self, params0, max_evals: int) -> tuple[np.ndarray, np.ndarray]:
        """Fitted parameters and their residuals."""
        scale = np.tile(THETA_SCALE, len(self.observations))
        if self.joint:
            scale = np.concatenate([[1.0, 1.0, 1.0], scale])
        return robust_least_squares(self.evaluate, params0, scale, max_evals)


def refine(theta0, rig, obs: Observation, cap: float = DT_CAP, max_evals: int = 20) -> np.ndarray:
    """Robust least-squares fit of pan, tilt, log focal from a starting camera, by both chamfer terms."""
    return _Problem([obs], rig, [theta0], joint=False, cap=cap).solve(np.asarray(theta0, float), max_evals)[0]


def joint_rig_fit(rig0: np.ndarray, thetas: list[np.ndarray], observations: list[Observation]) -> np.ndarray:
    """Camera position and per-frame pan/tilt/zoom fitted together; returns the position."""
    problem = _Problem(observations, rig0, thetas, joint=True, cap=DT_CAP)
    return problem.solve(np.concatenate([rig0, *thetas]), max_evals=30)[0][:3]


def fit_camera(theta0, rig, obs: Observation, wide: bool = False) -> Fit:
    """Fit from a starting camera; `wide` first fits with a wide cap, reaching a camera further away."""
    theta = np.asarray(theta0, float)
    if wide:
        theta = refine(theta, rig, obs, cap=WIDE_CAP, max_evals=10)
    # the final fit by the line pixels alone: precise (exact geometry, full resolution) and enough from a start
    # in its basin, it needs no distance transform of the frame; its residuals are the summary's
    theta, line_r = robust_least_squares(lambda x: line_term(x, rig, obs), theta, THETA_SCALE, max_evals=20)
    return summarise(theta, rig, obs, line_r=line_r)
