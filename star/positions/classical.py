"""Backend `classical`: calibrate the broadcast camera from the pitch lines it sees and find players as colour
blobs, from pixels only (made for the rendered synthetic broadcast; FACTS §6).

Per frame (RGB, from a frames cache):
1. masks: grass = green-dominant pixels (relative dominance: chroma subsampling tints white lines green);
   lines = unsaturated pixels brighter than the pixels 2 px away on both sides (thin: not the edge of a white
   shirt), amid grass, in connected pieces of at least 8 px that are not compact solid blocks (white shorts);
2. camera: a pan-tilt-zoom `Camera` (roll 0) at a rig position, fitted by robust least squares (soft-L1,
   analytic Jacobian) to two chamfer terms, both in pixels: every sampled line pixel back-projected to the ground
   lies on a model line (distance field of `pitch.line_points`, turned into pixels by the local projection
   Jacobian), and every model line point projected into the picture lands on a line pixel (distance transform
   of the line mask, capped at 12 px);
3. tracking: a frame starts from the last accepted camera (also across a cut), turned by the shift of the line
   pattern since that frame (phase correlation of the line masks); if that fit fails, a wide-basin fit (cap
   30 px) follows;
4. search, when tracking fails (the first frame; after a long cut): broadcast views aimed anywhere on the pitch,
   15-75 m across, scored by a cheap chamfer on sparse samples; the best views' neighbourhoods are scored
   again, the best 3 get a wide then a final fit. The rig position starts nominal (`rig`) and is refined once
   per half, jointly with pan/tilt/zoom of `rig_frames` frames spread over the half;
5. acceptance (else `calibrated = False` and no people: never guessed): at least `min_line_pixels` line pixels
   and `min_grass_share` grass; after the fit, median line-pixel distance to the model <= `max_median_px`, at
   least `min_explained` of the line pixels within 2 px of it, at least `min_matched` of the model points in the
   picture within 2 px of a line pixel, and at least 15 model points (22 m of lines) in the picture. Close-ups,
   replays (another camera position) and crowd shots fail these;
6. mirror guard (FACTS §6: the pitch is symmetric, partial views are degenerate): a tracked fit may not turn
   the pan by more than `max_pan_step` rad per second since the last accepted camera; in a search, among fits
   whose cost is within 10% of the best, the one whose pan is closest to the last accepted pan wins;
7. people: non-grass, non-line pixels over the pitch (+ 3 m), opened vertically (3 px) so line fringes do not
   join a player; connected components as tall as a person standing there (0.5-2.5x); one up to 4 people wide
   is split into equal columns, wider ones (boards) and ones cut by the picture's bottom edge are dropped. Feet
   = bottom centre, through the camera onto the pitch; feet behind a goal line (the net) are dropped, and so are
   detections at an image position that recurs in over 10% of the frames (a score bug). More than P people in a
   sample: the P nearest to the ground point under the image centre are kept;
8. teams: shirt colours (the most saturated third of the shirt band) of the whole half in 6 k-means clusters,
   close ones merged; the two largest are the teams, team 0 the one with the smaller mean x (it defends the
   left goal); a dark cluster is the referee; a cluster mostly in the outer thirds is goalkeepers, each of the
   team defending his side; the rest is role "other", team -1.

Measured on rendered halves of the default world (300 s, 398x224): every main-camera frame calibrated, none
of the cut frames, median ground error of the camera 4-5 cm; people within 2 m: recall ~0.90-0.95, precision
~0.89-0.93, median error ~0.2 m, team accuracy ~0.93-0.98. Cost: 16-25 ms CPU per sample on the project's
shared 2-core machine (rig refinement, reads and clustering included).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.optimize import least_squares
from tqdm import tqdm

from star.data.cache import open_cache
from star.errors import InputError
from star.positions.localizer import ROLE_INDEX, Detections, HalfSource, Localizer, Positions, samples_spanned
from star.world import pitch
from star.world.camera import Camera

FIELD_RES = 0.1          # m per cell of the pitch-line distance field
FIELD_MARGIN = 15.0      # m of field beyond the touch and goal lines
DT_CAP = 12.0            # px: a distance larger than this says "no line here", whatever its size
WIDE_CAP = 30.0          # px: the same for the first, wide-basin fit after a cut
SEARCH_CAP = 64.0        # px: the same for the first, coarsest scoring of the search grid
INLIER_PX = 2.0          # px: a line pixel (or model point) this close to the other side is explained
MAX_LINE_SAMPLES = 120   # line pixels per frame used in the fit
ROBUST_SCALE = 1.5       # px: soft-L1 scale of the fit
PERSON_HEIGHT = 1.8      # m
PERSON_WIDTH = 0.3       # a person's width in image, relative to height
LINE_REACH = 2           # px: a line pixel is compared with pixels this far on either side
LINE_CONTRAST = 45       # luma (r + g + b) a line pixel exceeds both sides by
MIN_LINE_SEGMENT = 8     # px: smaller connected pieces of the line mask are noise
COLOUR_BLEED = np.array([0.5, 0.9])   # px: 4:2:0 chroma spreads a figure's colour right and down (measured)
PITCH_MARGIN = 3.0       # m around the pitch where players are looked for
COVERAGES = (15.0, 22.0, 33.0, 50.0, 75.0)   # m across the view at its centre, for the search after a cut
MIN_SEEN = 14            # coarse model points (4.5 m apart) a view after a cut should show
SEARCH_BEAM = 16         # grid views whose neighbourhood is searched after a cut
SEARCH_KEEP = 3          # cameras refined after a cut
MIN_VISIBLE = 15         # model points (1.5 m apart) a calibrated view must show
COLOUR_CLUSTERS = 6      # two teams, two goalkeepers, the referee, and one for blurred mixtures
COLOUR_SAMPLE = 1500     # detections the colour clusters are fitted on
SAME_KIT = 40            # RGB distance under which two colour clusters are one kit
DARK_KIT = 80            # a cluster whose brightest channel is below this wears black: the referee
STATIC_SHARE, STATIC_MIN = 0.1, 10   # share (and least number) of frames that makes a detection an overlay
RIG_SLACK = 2.0          # the acceptance test is this much looser while the rig position is still nominal


# ---------------------------------------------------------------- lookup tables


def _bilinear(table: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """table [A, B, C] at fractional (rows, cols) [n] -> [n, C], clamped to the border."""
    a, b, c = table.shape
    rows = np.clip(rows, 0, a - 1.001)
    cols = np.clip(cols, 0, b - 1.001)
    r0, c0 = rows.astype(np.intp), cols.astype(np.intp)
    fr, fc = (rows - r0)[:, None], (cols - c0)[:, None]
    flat = table.reshape(-1, c)                                                    # [A*B, C]
    i = r0 * b + c0
    top = flat[i] * (1 - fc) + flat[i + 1] * fc
    bottom = flat[i + b] * (1 - fc) + flat[i + b + 1] * fc
    return top * (1 - fr) + bottom * fr


@dataclass(frozen=True)
class PitchModel:
    points: np.ndarray    # [M, 2] model line samples (m), what is projected into the image
    coarse: np.ndarray    # [m, 2] a sparser subset for the grid search
    table: np.ndarray     # [X, Y, 3] distance (m) to the nearest line and its unit gradient, per FIELD_RES cell
    origin: np.ndarray    # [2] ground point of cell (0, 0)

    def lookup(self, xy: np.ndarray) -> np.ndarray:
        """[n, 3]: distance (m) to the nearest line and the unit direction away from it, at ground points."""
        cells = (xy - self.origin) / FIELD_RES
        return _bilinear(self.table, cells[:, 0], cells[:, 1])


@lru_cache(maxsize=1)
def pitch_model() -> PitchModel:
    origin = np.array([-pitch.HALF_L - FIELD_MARGIN, -pitch.HALF_W - FIELD_MARGIN])
    shape = np.ceil(2 * (-origin) / FIELD_RES).astype(int) + 1
    free = np.ones(shape, bool)
    idx = np.round((pitch.line_points(FIELD_RES / 2) - origin) / FIELD_RES).astype(int)
    free[idx[:, 0], idx[:, 1]] = False
    field = ndimage.distance_transform_edt(free) * FIELD_RES
    grad = np.stack(np.gradient(field), -1)                                          # [X, Y, 2]
    grad /= np.maximum(np.linalg.norm(grad, axis=-1, keepdims=True), 1e-6)
    table = np.concatenate([field[..., None], grad], -1).astype(np.float32)
    points = pitch.line_points(1.5)
    return PitchModel(points, points[::3], table, origin)


# ---------------------------------------------------------------- masks


def _planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # channel planes as int16 (reductions over a length-3 last axis are slow in numpy)
    return tuple(rgb[..., i].astype(np.int16) for i in range(3))


def grass_mask(rgb: np.ndarray) -> np.ndarray:
    """Green-dominant pixels [H, W]. Relative dominance: chroma subsampling tints white lines green."""
    r, g, b = _planes(rgb)
    return 4 * (g - np.maximum(r, b)) > g + 20


def line_mask(rgb: np.ndarray, grass: np.ndarray) -> np.ndarray:
    """Painted-line pixels [H, W]: unsaturated, brighter than the pixels LINE_REACH px away on both sides
    (across a line of at most 2 * LINE_REACH - 1 px; not so at the edge of a white shirt or board), amid grass."""
    r, g, b = _planes(rgb)
    luma = r + g + b
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    d = LINE_REACH
    padded = np.pad(luma, d, mode="edge")
    h, w = luma.shape
    across_rows = np.maximum(padded[:h, d:d + w], padded[2 * d:, d:d + w])           # above and below
    across_cols = np.maximum(padded[d:d + h, :w], padded[d:d + h, 2 * d:])           # left and right
    thin = (luma - across_rows > LINE_CONTRAST) | (luma - across_cols > LINE_CONTRAST)
    near_grass = ndimage.uniform_filter(grass.view(np.uint8), 9, output=np.float32) > 0.5
    lines = thin & (3 * spread < 0.3 * luma + 75) & near_grass & ~grass
    # specks (crowd noise at the pitch edge, a ball) and solid white blocks (shorts) are no lines
    labels, count = ndimage.label(lines, structure=np.ones((3, 3)))
    sizes = np.bincount(labels[lines], minlength=count + 1)
    keep = sizes >= MIN_LINE_SEGMENT
    keep[0] = False
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        h, w = box[0].stop - box[0].start, box[1].stop - box[1].start
        if keep[index] and max(h, w) <= 2.5 * min(h, w) and sizes[index] >= 0.6 * h * w:
            keep[index] = False     # compact and solid: not a line (lines are long, or sparse in their box)
    return keep[labels]


# ---------------------------------------------------------------- geometry
# A camera is theta = (pan, tilt, log focal) at a rig position [3], as star.world.camera.Camera.


def _axes(pan, tilt) -> np.ndarray:
    """Rows right, down, forward of cameras [..., 3, 3] for arrays of pan and tilt."""
    cp, sp, ct, st = np.cos(pan), np.sin(pan), np.cos(tilt), np.sin(tilt)
    zero = np.zeros_like(cp)
    return np.stack([np.stack([cp, sp, zero], -1), np.stack([-st * sp, st * cp, ct], -1),
                     np.stack([sp * ct, -cp * ct, st], -1)], -2)


def _axes_with_derivatives(pan: float, tilt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows right, down, forward of one camera [3, 3], and their derivatives by pan and by tilt."""
    cp, sp, ct, st = np.cos(pan), np.sin(pan), np.cos(tilt), np.sin(tilt)
    axes = np.array([[cp, sp, 0.0], [-st * sp, st * cp, ct], [sp * ct, -cp * ct, st]])
    by_pan = np.array([[-sp, cp, 0.0], [-st * cp, -st * sp, 0.0], [cp * ct, sp * ct, 0.0]])
    by_tilt = np.array([[0.0, 0.0, 0.0], [-ct * sp, ct * cp, -st], [-sp * st, cp * st, ct]])
    return axes, by_pan, by_tilt


@dataclass
class View:
    """Ground points seen by one camera, with first derivatives."""

    uv: np.ndarray              # [n, 2] pixels
    depth: np.ndarray           # [n]
    d_theta: np.ndarray         # [n, 2, 3] d(u, v) / d(pan, tilt, log focal)
    d_point: np.ndarray         # [n, 2, 3 or 2] d(u, v) / d(world point); by the rig position the negative


def view(theta: np.ndarray, rig: np.ndarray, xy: np.ndarray, size, ground_only: bool = False) -> View:
    """Ground points [n, 2] seen by camera theta at the rig; `ground_only`: d_point by x, y only."""
    axes, by_pan, by_tilt = _axes_with_derivatives(theta[0], theta[1])
    focal = np.exp(theta[2])
    d = np.concatenate([xy, np.zeros((len(xy), 1))], 1) - rig                        # [n, 3]
    X, Y, Z, Xp, Yp, Zp, _, Yt, Zt = (d @ np.concatenate([axes, by_pan, by_tilt]).T).T   # [n] each
    Z = np.where(Z > 1e-3, Z, 1e-3)
    uv = np.stack([focal * X / Z + size[0] / 2, focal * Y / Z + size[1] / 2], 1)
    inv_z2 = focal / Z ** 2
    d_theta = np.stack([
        np.stack([(Xp * Z - X * Zp) * inv_z2, -X * Zt * inv_z2, focal * X / Z], 1),
        np.stack([(Yp * Z - Y * Zp) * inv_z2, (Yt * Z - Y * Zt) * inv_z2, focal * Y / Z], 1),
    ], 1)
    dims = 2 if ground_only else 3
    d_point = np.stack([(axes[0, :dims] * Z[:, None] - axes[2, :dims] * X[:, None]) * inv_z2[:, None],
                        (axes[1, :dims] * Z[:, None] - axes[2, :dims] * Y[:, None]) * inv_z2[:, None]], 1)
    return View(uv, Z, d_theta, d_point)


def project_many(thetas: np.ndarray, rig: np.ndarray, xy: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    """Ground points [n, 2] -> pixels [K, n, 2] and depth [K, n] for cameras thetas [K, 3]."""
    axes = _axes(thetas[:, 0], thetas[:, 1])                                         # [K, 3, 3]
    d = np.concatenate([xy, np.zeros((len(xy), 1))], 1) - rig
    cam = np.einsum("kaj,nj->kna", axes, d)                                          # [K, n, 3]
    depth = cam[..., 2]
    scale = np.exp(thetas[:, 2])[:, None] / np.where(depth > 1e-3, depth, 1e-3)
    uv = cam[..., :2] * scale[..., None] + np.array([size[0] / 2, size[1] / 2])
    return uv, depth


def backproject_many(thetas: np.ndarray, rig: np.ndarray, uv: np.ndarray, size) -> np.ndarray:
    """Pixels [n, 2] -> ground points [K, n, 2] (NaN above the horizon) for cameras thetas [K, 3]."""
    axes = _axes(thetas[:, 0], thetas[:, 1])                                         # [K, 3, 3]
    focal = np.exp(thetas[:, 2])[:, None]
    a = (uv[:, 0] - size[0] / 2) / focal                                             # [K, n]
    b = (uv[:, 1] - size[1] / 2) / focal
    rays = a[..., None] * axes[:, None, 0] + b[..., None] * axes[:, None, 1] + axes[:, None, 2]   # [K, n, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -rig[2] / rays[..., 2]
    ground = rig[:2] + s[..., None] * rays[..., :2]
    return np.where((s > 0)[..., None], ground, np.nan)


def to_camera(theta, rig, size) -> Camera:
    return Camera(float(rig[0]), float(rig[1]), float(rig[2]), float(theta[0]), float(theta[1]),
                  float(np.exp(theta[2])), int(size[0]), int(size[1]))


# ---------------------------------------------------------------- one frame


@dataclass
class Observation:
    """What the calibration needs from one frame."""

    size: tuple[int, int]       # width, height
    line_uv: np.ndarray         # [n, 2] sampled line pixel centres
    line_count: int
    grass_share: float
    dt: np.ndarray              # [H, W, 3] px to the nearest line pixel (up to SEARCH_CAP), d/drow, d/dcol
    grass: np.ndarray           # [H, W] bool
    lines: np.ndarray           # [H, W] bool

    @cached_property
    def spectrum(self) -> np.ndarray:
        """2-D FFT of the line mask at half resolution (2x2 max-pooled), for `image_shift`."""
        h, w = (s // 2 * 2 for s in self.lines.shape)
        m = self.lines[:h, :w]
        pooled = m[0::2, 0::2] | m[1::2, 0::2] | m[0::2, 1::2] | m[1::2, 1::2]          # [H/2, W/2]
        return scipy.fft.rfft2(pooled.astype(np.float32))

    @classmethod
    def from_frame(cls, rgb: np.ndarray) -> Observation:
        grass = grass_mask(rgb)
        lines = line_mask(rgb, grass)
        rows, cols = np.nonzero(lines)
        pick = np.linspace(0, len(rows) - 1, min(len(rows), MAX_LINE_SAMPLES)).astype(int)
        line_uv = np.stack([cols[pick] + 0.5, rows[pick] + 0.5], 1).astype(float)
        # chessboard distance: 4x faster than the exact one, equal along rows and columns, and the fit only
        # needs it to grow away from the lines
        dt = np.full(lines.shape, SEARCH_CAP, np.float32)
        if len(rows):
            dt = np.minimum(ndimage.distance_transform_cdt(~lines, "chessboard"), SEARCH_CAP).astype(np.float32)
        table = np.zeros((*dt.shape, 3), np.float32)                                # distance, d/drow, d/dcol
        table[..., 0] = dt
        table[1:-1, :, 1] = (dt[2:] - dt[:-2]) / 2
        table[:, 1:-1, 2] = (dt[:, 2:] - dt[:, :-2]) / 2
        return cls((rgb.shape[1], rgb.shape[0]), line_uv, len(rows), float(grass.mean()), table, grass, lines)


def image_shift(before: np.ndarray, after: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(du, dv) px the line pattern moved between two frames, by phase correlation of their `spectrum`s."""
    cross = after * np.conj(before)
    surface = scipy.fft.irfft2(cross / (np.abs(cross) + 1e-6), s=(size[1] // 2, size[0] // 2))
    peak = np.array(np.unravel_index(np.argmax(surface), surface.shape))               # row, col
    peak = np.where(peak < np.array(surface.shape) // 2, peak, peak - np.array(surface.shape))   # wrap around
    return 2.0 * peak[::-1]


def terms(theta: np.ndarray, rig: np.ndarray, obs: Observation, with_rig: bool = False, points=None,
          cap: float = DT_CAP):
    """The two chamfer terms of a camera, with derivatives by (pan, tilt, log focal[, rig x, y, z]):
    line pixels -> model: px [n] and [n, p]; model points (default all) -> line pixels: px [M] and [M, p]
    (0 outside the image); and which model points are inside the image [M]. Distances stop at `cap`."""
    model = pitch_model()
    points = model.points if points is None else points
    # line pixels are back-projected to the ground; one view of those and the model points serves both terms
    ground = backproject_many(theta[None], rig, obs.line_uv, obs.size)[0]
    ok = np.isfinite(ground).all(1)                                                     # below the horizon
    n = int(ok.sum())
    v = view(theta, rig, np.concatenate([ground[ok], points]), obs.size, ground_only=not with_rig)
    d_params = np.concatenate([v.d_theta, -v.d_point], 2) if with_rig else v.d_theta     # [n + M, 2, p]

    # line pixels: metres to the nearest model line, to px along its normal by the local Jacobian Jg
    near = model.lookup(ground[ok])                                                     # [n, 3]
    normal = near[:, 1:] / np.maximum(np.linalg.norm(near[:, 1:], axis=1, keepdims=True), 1e-6)
    jg = v.d_point[:n, :, :2]                                                           # [n, 2, 2]
    det = jg[:, 0, 0] * jg[:, 1, 1] - jg[:, 0, 1] * jg[:, 1, 0]
    det = np.where(np.abs(det) > 1e-9, det, 1e-9)
    # n^T Jg^-1 (closed-form 2x2 inverse): ground motion along the normal per px of image motion
    row = np.stack([normal[:, 0] * jg[:, 1, 1] - normal[:, 1] * jg[:, 1, 0],
                    normal[:, 1] * jg[:, 0, 0] - normal[:, 0] * jg[:, 0, 1]], 1) / det[:, None]
    stretch = np.linalg.norm(np.einsum("kij,kj->ki", jg, normal), axis=1)
    dist = near[:, 0] * stretch
    # the pixel is fixed: dp = -Jg^-1 (Jtheta dtheta + Jrig drig), with Jrig = -Jpoint
    jac = -stretch[:, None] * np.einsum("ki,kij->kj", row, d_params[:n])
    line_r = np.full(len(ok), cap)
    line_j = np.zeros((len(ok), d_params.shape[2]))
    line_r[ok] = np.minimum(dist, cap)
    line_j[ok] = np.where((dist >= cap)[:, None], 0.0, jac)

    # model points: distance transform of the line mask where they land
    uv = v.uv[n:]
    w, h = obs.size
    inside = (v.depth[n:] > 1) & (uv[:, 0] >= 0) & (uv[:, 0] <= w) & (uv[:, 1] >= 0) & (uv[:, 1] <= h)
    near = _bilinear(obs.dt, uv[:, 1] - 0.5, uv[:, 0] - 0.5)                            # [M, 3]
    model_r = np.where(inside, np.minimum(near[:, 0], cap), 0.0)
    model_j = np.einsum("mi,mij->mj", near[:, [2, 1]], d_params[n:])                   # DT gradient by u, v
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


def summarise(theta, rig, obs: Observation, cap: float = DT_CAP) -> Fit:
    line_r, _, model_r, _, inside = terms(theta, rig, obs, cap=cap)
    r = np.concatenate([line_r, model_r[inside]]) / ROBUST_SCALE
    cost = float(np.mean(2 * (np.sqrt(1 + r ** 2) - 1))) if len(r) else np.inf
    matched = float(np.mean(model_r[inside] < INLIER_PX)) if inside.any() else 0.0
    return Fit(np.asarray(theta, float), cost, float(np.median(line_r)) if len(line_r) else np.inf,
               float(np.mean(line_r < INLIER_PX)) if len(line_r) else 0.0, matched, int(inside.sum()))


class _Problem:
    """Stacked residuals and Jacobian of frames sharing one rig; `joint` also fits the rig position."""

    def __init__(self, observations: list[Observation], rig, thetas: list[np.ndarray], joint: bool, cap: float):
        self.observations, self.rig, self.joint, self.cap = observations, np.asarray(rig, float), joint, cap
        self.points, self.weights = [], []
        model = pitch_model().points
        for theta, obs in zip(thetas, observations, strict=True):
            # only model points near the starting view can come into it during the fit
            uv, depth = project_many(np.asarray(theta, float)[None], self.rig, model, obs.size)
            offset = np.abs(uv[0] / obs.size - 0.5)                                  # [M, 2] 0 centre, 0.5 edge
            near = (depth[0] > 1) & (offset < 0.8).all(1)
            self.points.append(model[near])
            # balance the two terms: as many line samples as model points in view
            seen = int((near & (offset <= 0.5).all(1)).sum())
            self.weights.append(np.sqrt(max(len(obs.line_uv), 1) / max(seen, MIN_VISIBLE)))
        self._key, self._value = None, None

    def split(self, params):
        k = len(self.observations)
        rig = params[:3] if self.joint else self.rig
        return rig, (params[3:] if self.joint else params).reshape(k, 3)            # [k, 3]

    def _evaluate(self, params):
        if self._key is None or not np.array_equal(params, self._key):
            rig, thetas = self.split(params)
            shift = 3 if self.joint else 0
            residuals, rows = [], []
            frames = zip(thetas, self.observations, self.points, self.weights, strict=True)
            for i, (theta, obs, points, weight) in enumerate(frames):
                line_r, line_j, model_r, model_j, _ = terms(theta, rig, obs, self.joint, points, self.cap)
                jac = np.concatenate([line_j, weight * model_j])                         # [r, 3 or 6]
                block = np.zeros((len(jac), shift + 3 * len(thetas)))
                block[:, shift + 3 * i: shift + 3 * i + 3] = jac[:, :3]
                block[:, :shift] = jac[:, 3:]
                residuals.append(np.concatenate([line_r, weight * model_r]))
                rows.append(block)
            self._key, self._value = params.copy(), (np.concatenate(residuals), np.concatenate(rows))
        return self._value

    def residuals(self, params):
        return self._evaluate(params)[0]

    def jacobian(self, params):
        return self._evaluate(params)[1]

    def solve(self, params0, max_nfev: int):
        scale = np.tile([0.05, 0.05, 0.1], len(self.observations))
        if self.joint:
            scale = np.concatenate([[1.0, 1.0, 1.0], scale])
        return least_squares(self.residuals, params0, jac=self.jacobian, loss="soft_l1", f_scale=ROBUST_SCALE,
                             x_scale=scale, max_nfev=max_nfev, xtol=1e-4, ftol=1e-4).x


def refine(theta0, rig, obs: Observation, cap: float = DT_CAP, max_nfev: int = 20) -> np.ndarray:
    """Robust least-squares fit of pan, tilt, log focal from a starting camera."""
    return _Problem([obs], rig, [theta0], joint=False, cap=cap).solve(np.asarray(theta0, float), max_nfev)


def joint_rig_fit(rig0: np.ndarray, thetas: list[np.ndarray], observations: list[Observation]) -> np.ndarray:
    """Camera position and per-frame pan/tilt/zoom fitted together; returns the position."""
    problem = _Problem(observations, rig0, thetas, joint=True, cap=DT_CAP)
    return problem.solve(np.concatenate([rig0, *thetas]), max_nfev=30)[:3]


# ---------------------------------------------------------------- the coarse search after a cut


def looking_at(rig: np.ndarray, aim: np.ndarray, coverage: np.ndarray, width: int) -> np.ndarray:
    """Cameras [K, 3] at the rig centred on ground points aim [K, 2], seeing `coverage` metres [K] across there."""
    dx, dy = aim[:, 0] - rig[0], aim[:, 1] - rig[1]
    ground = np.hypot(dx, dy)
    return np.stack([np.arctan2(dx, -dy), np.arctan2(-rig[2], ground),
                     np.log(width * np.hypot(ground, rig[2]) / coverage)], 1)


def search_grid(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast views to try after a cut, as aim points [K, 2], coverage [K] (m across the view at the aim) and
    aim spacing [K]: centred anywhere on the pitch, from tight (15 m across) to wide (75 m), a quarter of a view
    apart."""
    aims, coverage, spacing = [], [], []
    for across in COVERAGES:
        step = across / 4
        xs = np.arange(-pitch.HALF_L, pitch.HALF_L + 1e-6, step)
        ys = np.arange(-pitch.HALF_W, pitch.HALF_W + 1e-6, step)
        grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)        # [k, 2]
        aims.append(grid)
        coverage.append(np.full(len(grid), across))
        spacing.append(np.full(len(grid), step))
    return np.concatenate(aims), np.concatenate(coverage), np.concatenate(spacing)


def chamfer_scores(obs: Observation, rig: np.ndarray, thetas: np.ndarray, cap: float) -> np.ndarray:
    """A cheap two-sided chamfer score [K] of cameras [K, 3]: nearest-pixel lookups on sparse samples."""
    model = pitch_model()
    w, h = obs.size
    uv, depth = project_many(thetas, rig, model.coarse, obs.size)                    # [K, m, 2], [K, m]
    inside = (depth > 1) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    cols = np.clip(uv[..., 0], 0, w - 1).astype(int)
    rows = np.clip(uv[..., 1], 0, h - 1).astype(int)
    # mean over the model points in view, a view with fewer than MIN_SEEN paying `cap` for each one missing:
    # else a tight view of one line would score as well as a true wide one
    seen = inside.sum(1)
    model_sum = np.where(inside, np.minimum(obs.dt[rows, cols, 0], cap), 0).sum(1)
    model_cost = (model_sum + cap * np.maximum(MIN_SEEN - seen, 0)) / np.maximum(seen, MIN_SEEN)
    sample = obs.line_uv[:: max(1, len(obs.line_uv) // 40)]
    ground = backproject_many(thetas, rig, sample, obs.size)                         # [K, n, 2]
    ok = np.isfinite(ground).all(-1)
    ground = np.where(ok[..., None], ground, 0)
    cells = np.round((ground - model.origin) / FIELD_RES).astype(int)
    cells = np.clip(cells, 0, np.array(model.table.shape[:2]) - 1)
    metres = model.table[cells[..., 0], cells[..., 1], 0]
    # metres -> px by focal / distance from the camera (foreshortening ignored: fine for ranking)
    px = metres * np.exp(thetas[:, 2:3]) / np.hypot(np.linalg.norm(ground - rig[:2], axis=-1), rig[2])
    line_cost = np.where(ok, np.minimum(px, cap), cap).mean(1)
    return model_cost + line_cost


def coarse_candidates(obs: Observation, rig: np.ndarray, keep: int) -> np.ndarray:
    """The `keep` most promising cameras [keep, 3] for a frame after a cut: the best grid views by a very wide
    chamfer score, then the best of their neighbours (aim moved by half a step, zoom by 20%)."""
    aims, coverage, spacing = search_grid(obs.size[0])
    scores = chamfer_scores(obs, rig, looking_at(rig, aims, coverage, obs.size[0]), SEARCH_CAP)
    best = np.argsort(scores, kind="stable")[:SEARCH_BEAM]
    offsets = np.stack(np.meshgrid([-0.5, 0, 0.5], [-0.5, 0, 0.5], [1 / 1.2, 1, 1.2], indexing="ij"), -1)
    offsets = offsets.reshape(-1, 3)                                                   # [27, 3]: aim x, y, zoom
    near_aims = (aims[best, None] + offsets[None, :, :2] * spacing[best, None, None]).reshape(-1, 2)   # [B*27, 2]
    near_coverage = (coverage[best, None] * offsets[None, :, 2]).reshape(-1)
    thetas = np.unique(looking_at(rig, near_aims, near_coverage, obs.size[0]).round(4), axis=0)
    return thetas[np.argsort(chamfer_scores(obs, rig, thetas, SEARCH_CAP), kind="stable")[:keep]]


# ---------------------------------------------------------------- players


@dataclass
class Found:
    """People detected in one calibrated frame."""

    xy: np.ndarray        # [k, 2] pitch metres
    colour: np.ndarray    # [k, 3] shirt RGB (see shirt_colour)
    uv: np.ndarray        # [k, 2] foot pixels
    centre: np.ndarray    # [2] ground point under the image centre


@dataclass
class Blob:
    foot_uv: np.ndarray       # [2] px, bottom edge of the feet
    colour: np.ndarray        # [3] shirt RGB (see shirt_colour)


def near_pitch(camera: Camera, size: tuple[int, int], step: int = 4) -> np.ndarray:
    """[H, W] pixels whose ground point lies on the pitch or within PITCH_MARGIN of it (on a `step`-px grid)."""
    w, h = size
    grid = np.stack(np.meshgrid(np.arange(0, w, step) + step / 2, np.arange(0, h, step) + step / 2), -1)
    ground = camera.to_pitch(grid.reshape(-1, 2)).reshape(*grid.shape[:2], 2)           # [h/step, w/step, 2]
    with np.errstate(invalid="ignore"):
        near = pitch.on_pitch(ground[..., 0], ground[..., 1], PITCH_MARGIN)
    return np.repeat(np.repeat(near, step, 0), step, 1)[:h, :w]


def find_blobs(rgb: np.ndarray, obs: Observation, camera: Camera) -> list[Blob]:
    """Person-sized blobs of non-grass, non-line pixels standing on the pitch. A blob as wide as a few people
    side by side is split into equal columns; wider ones (boards, crowd) and blobs cut by the bottom edge of
    the picture (feet unseen) are dropped."""
    h, w = rgb.shape[:2]
    candidates = ~obs.grass & ~obs.lines & near_pitch(camera, (w, h))
    # a vertical opening removes what is less than 3 px tall: line pixels beside a player, which the line mask
    # misses because they are not surrounded by grass, would otherwise join his blob
    core = candidates[:-2] & candidates[1:-1] & candidates[2:]                          # [H-2, W] 3-px erosion
    candidates = np.zeros_like(candidates)
    for shift in range(3):
        candidates[shift:h - 2 + shift] |= core
    labels, _ = ndimage.label(candidates, structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(labels)
    if not boxes:
        return []
    spans = np.array([(b[0].start, b[0].stop, b[1].start, b[1].stop) for b in boxes])   # [k, 4]: rows, cols
    expected = person_heights(camera, np.stack([spans[:, 2:].mean(1), spans[:, 1]], 1))
    blobs = []
    for index in np.flatnonzero((spans[:, 1] < h) & (spans[:, 1] - spans[:, 0] >= 0.5 * expected)
                                & (spans[:, 1] - spans[:, 0] <= 2.5 * expected)):
        top, bottom, left, right = spans[index]
        side_by_side = (right - left) / (PERSON_WIDTH * expected[index])
        if side_by_side > 4:
            continue
        region = labels[boxes[index]] == index + 1
        # blur widens a figure by a pixel or two: split only from 1.7 people wide
        edges = np.linspace(0, right - left, max(1, int(side_by_side + 0.3)) + 1).round().astype(int)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            part = region[:, a:b]                                                       # [rows, cols]
            rows = np.flatnonzero(part.any(1))
            if len(rows) == 0 or rows[-1] - rows[0] + 1 < 0.5 * expected[index] \
                    or part.sum() < 0.08 * expected[index] ** 2:
                continue
            part_top, part_bottom = rows[0], rows[-1] + 1
            feet = np.flatnonzero(part[part_bottom - 1])
            foot_uv = np.array([left + a + feet.mean() + 0.5, top + part_bottom]) - COLOUR_BLEED   # feet's edge
            height = part_bottom - part_top
            band = slice(part_top + int(0.2 * height), part_top + int(0.5 * height) + 1)   # the shirt
            pixels = rgb[boxes[index]][band, a:b][part[band]]
            blobs.append(Blob(foot_uv, shirt_colour(pixels if len(pixels) else rgb[boxes[index]][:, a:b][part])))
    return blobs


def person_heights(camera: Camera, foot_uv: np.ndarray) -> np.ndarray:
    """Expected image height (px) [k] of a person whose feet are at pixels [k, 2]; 0 where unknown."""
    ground = camera.to_pitch(foot_uv)
    ok = np.isfinite(ground).all(1)
    feet = np.concatenate([np.nan_to_num(ground), np.zeros((len(ground), 1))], 1)      # [k, 3]
    uv, depth = camera.project(np.concatenate([feet, feet - [0, 0, PERSON_HEIGHT]]))
    k = len(ground)
    return np.where(ok & (depth[:k] > 0) & (depth[k:] > 0), uv[:k, 1] - uv[k:, 1], 0.0)


def shirt_colour(pixels: np.ndarray) -> np.ndarray:
    """Mean of the most saturated third of the shirt pixels [n, 3]: chroma subsampling bleeds grass and shorts
    into a small figure, least at its most colourful pixels."""
    pixels = pixels.astype(np.float32)
    saturation = pixels.max(1) - pixels.min(1)
    top = np.argsort(-saturation, kind="stable")[: max(1, len(pixels) // 3)]
    return pixels[top].mean(0)


def assign_teams(xy: np.ndarray, colours: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """team [n] and role [n] of all detections of a half, from their shirt colours [n, 3] and positions [n, 2].

    k-means on colour (close centres merged); the two largest clusters are the teams (team 0 the one with the
    smaller mean x: it defends the left goal); a dark small cluster is the referee; a small cluster mostly in the
    outer thirds of the pitch holds goalkeepers, each of the team defending the goal on his side; the rest is
    "other"."""
    from scipy.cluster.vq import kmeans2, vq
    from scipy.spatial.distance import pdist, squareform

    n = len(colours)
    team, role = np.full(n, -1, np.int8), np.full(n, ROLE_INDEX["other"], np.int8)
    k = min(COLOUR_CLUSTERS, len(np.unique(colours, axis=0)))
    if k < 2:
        return team, role
    sample = colours[np.linspace(0, n - 1, min(n, COLOUR_SAMPLE)).astype(int)]          # fit on a spread subset
    centres, _ = kmeans2(sample, k, minit="++", seed=seed)
    # k-means splits a kit in two when there are fewer kinds of kit than clusters: merge close centres
    merged = np.arange(k)
    for i, j in zip(*np.nonzero(squareform(pdist(centres)) < SAME_KIT), strict=True):
        merged[merged == merged[j]] = merged[i]
    labels = merged[vq(colours, centres)[0]]
    sizes = np.bincount(labels, minlength=k)
    by_size = [c for c in np.argsort(-sizes, kind="stable") if sizes[c]]
    for side, cluster in enumerate(sorted(by_size[:2], key=lambda c: xy[labels == c, 0].mean())):
        team[labels == cluster] = side
        role[labels == cluster] = ROLE_INDEX["player"]
    for cluster in by_size[2:]:
        members = labels == cluster
        x = xy[members, 0]
        if colours[members].mean(0).max() < DARK_KIT:
            role[members] = ROLE_INDEX["referee"]
        elif np.mean(np.abs(x) > pitch.HALF_L / 3) >= 0.6:
            role[members] = ROLE_INDEX["goalkeeper"]
            team[members] = (x > 0).astype(np.int8)
    return team, role


# ---------------------------------------------------------------- the backend


class ClassicalLocalizer(Localizer):
    def __init__(self, config: dict):
        super().__init__(config)
        self.settings = config["classical"]

    def localize(self, source: HalfSource) -> Positions:
        if source.frames is None:
            raise InputError("the classical backend needs a frames cache (--frames)")
        with open_cache(source.frames, "frames") as h5:
            frames = h5["frames"]
            frames_fps = float(h5.attrs["fps"])
            if frames_fps + 1e-9 < self.fps:
                raise InputError(f"{source.frames}: frames at {frames_fps} fps cannot give positions at "
                                 f"{self.fps} fps (positions.fps must not exceed decode.fps)")
            length = source.length or samples_spanned(len(frames), frames_fps, self.fps)
            picks = np.minimum(np.round(np.arange(length) * frames_fps / self.fps).astype(int), len(frames) - 1)
            tracker = HalfTracker(self.settings, (frames.shape[2], frames.shape[1]), self.fps)
            tracker.calibrate_rig([frames[i] for i in _spread(picks, self.settings["rig_frames"])])
            progress = tqdm(picks, desc=f"positions {source.game} half {source.half}", unit="frame", leave=False)
            people = [tracker.step(frames[i]) for i in progress]
        return tracker.positions(people, self.max_players)

    def sources(self, source: HalfSource) -> list:
        return [source.frames] if source.frames else []


def _spread(indices: np.ndarray, count: int) -> np.ndarray:
    """`count` entries of `indices`, evenly spread."""
    if not len(indices):
        return indices
    return indices[np.linspace(0, len(indices) - 1, min(count, len(indices))).astype(int)]


def fit_camera(theta0, rig, obs: Observation, wide: bool = False) -> Fit:
    """Fit from a starting camera; `wide` first fits with a wide cap, reaching a camera further away."""
    theta = np.asarray(theta0, float)
    if wide:
        theta = refine(theta, rig, obs, cap=WIDE_CAP, max_nfev=10)
    return summarise(refine(theta, rig, obs), rig, obs)


class HalfTracker:
    """Calibrates frame after frame of one half and collects player blobs."""

    def __init__(self, settings: dict, size: tuple[int, int], fps: float):
        self.s = settings
        self.size = size
        self.rig = np.array(settings["rig"], float)
        self.max_step = settings["max_pan_step"] / fps
        # the last accepted camera, its frame's line spectrum, and the samples since: where tracking starts
        self.last: tuple[np.ndarray, np.ndarray, int] | None = None

    # -- per frame

    def usable(self, obs: Observation) -> bool:
        return obs.line_count >= self.s["min_line_pixels"] and obs.grass_share >= self.s["min_grass_share"]

    def accepted(self, fit: Fit, slack: float = 1.0) -> bool:
        """The acceptance test of the module docstring; `slack` > 1 loosens it (rig calibration)."""
        return (fit.median_px <= slack * self.s["max_median_px"]
                and fit.explained >= self.s["min_explained"] / slack
                and fit.matched >= self.s["min_matched"] / slack and fit.visible >= MIN_VISIBLE)

    def search(self, obs: Observation, slack: float = 1.0) -> Fit | None:
        """Fit after a cut: wide fits from the best grid cameras, final fits of those within 50% of the best wide
        cost; among accepted final fits within 10% of the best, the mirror guard takes the one whose pan is
        closest to the last accepted pan."""
        wide = [refine(theta, self.rig, obs, cap=WIDE_CAP, max_nfev=10)
                for theta in coarse_candidates(obs, self.rig, SEARCH_KEEP)]
        costs = np.array([summarise(theta, self.rig, obs, cap=WIDE_CAP).cost for theta in wide])
        fits = [fit_camera(theta, self.rig, obs) for theta, cost in zip(wide, costs, strict=True)
                if cost <= 1.5 * costs.min()]
        good = [f for f in fits if self.accepted(f, slack)]
        if not good:
            return None
        best = min(f.cost for f in good)
        close = [f for f in good if f.cost <= 1.1 * best]
        if self.last is None:
            return min(close, key=lambda f: f.cost)
        return min(close, key=lambda f: abs(f.theta[0] - self.last[0][0]))

    def track(self, obs: Observation) -> Fit | None:
        """Fit from the last accepted camera turned by the shift of the line pattern since (phase correlation);
        a wide fit if that fails. After a cut the shift may be too large: the search then takes over."""
        theta, spectrum, gap = self.last
        du, dv = image_shift(spectrum, obs.spectrum, obs.size)
        # content moving right means the camera turned left: pan and tilt change by -shift / focal
        start = theta - np.array([du, dv, 0.0]) / np.exp(theta[2])
        for wide in (False, True):
            fit = fit_camera(start, self.rig, obs, wide)
            if self.accepted(fit) and abs(fit.theta[0] - theta[0]) <= self.max_step * gap:
                return fit
        return None

    def calibrate(self, obs: Observation) -> Fit | None:
        """This frame's camera (tracked from the last accepted one, else searched), or None."""
        fit = None
        if self.usable(obs):
            fit = self.track(obs) if self.last is not None else None
            fit = fit or self.search(obs)
        if fit is not None:
            self.last = (fit.theta, obs.spectrum, 1)
        elif self.last is not None:
            self.last = (*self.last[:2], self.last[2] + 1)
        return fit

    def step(self, rgb: np.ndarray) -> Found | None:
        """The people of one frame, or None if it is not calibrated."""
        obs = Observation.from_frame(rgb)
        fit = self.calibrate(obs)
        if fit is None:
            return None
        camera = to_camera(fit.theta, self.rig, self.size)
        centre = camera.to_pitch(np.array([[self.size[0] / 2, self.size[1] / 2]]))[0]
        blobs = find_blobs(rgb, obs, camera)
        uv = np.array([b.foot_uv for b in blobs]).reshape(-1, 2)
        xy = camera.to_pitch(uv) if len(uv) else uv
        # feet on the pitch; behind a goal line is the net, not a person
        keep = (np.isfinite(xy).all(1) & (np.abs(xy[:, 0]) <= pitch.HALF_L + 0.5)
                & (np.abs(xy[:, 1]) <= pitch.HALF_W + 1.5))
        colours = np.array([b.colour for b in blobs]).reshape(-1, 3)
        return Found(xy[keep], colours[keep], uv[keep], centre)

    # -- per half

    def calibrate_rig(self, frames: list[np.ndarray]) -> None:
        """Refine the camera position once per half: fit frames spread over the half at the nominal rig (with
        slack: pan, tilt and zoom absorb most of a position error), then fit the position jointly with them."""
        if not self.s["refine_rig"]:
            return
        thetas, observations = [], []
        for rgb in frames:
            obs = Observation.from_frame(rgb)
            fit = self.search(obs, slack=RIG_SLACK) if self.usable(obs) else None
            if fit is not None:
                thetas.append(fit.theta)
                observations.append(obs)
        if len(thetas) >= 3:
            self.rig = joint_rig_fit(self.rig, thetas, observations)

    def positions(self, people: list[Found | None], max_players: int) -> Positions:
        """Pack a half's detections, with teams and roles from its colour clusters; drop overlay artefacts."""
        out = Positions.empty(len(people), max_players)
        found = [p for p in people if p is not None]
        if not found:
            return out
        xy = np.concatenate([p.xy for p in found])
        keep = ~static_in_image(np.concatenate([p.uv for p in found]), len(found))
        team, role = np.full(len(xy), -1, np.int8), np.full(len(xy), ROLE_INDEX["other"], np.int8)
        team[keep], role[keep] = assign_teams(xy[keep], np.concatenate([p.colour for p in found])[keep])
        start = 0
        for i, p in enumerate(people):
            if p is None:
                continue
            rows = slice(start, start + len(p.xy))
            start += len(p.xy)
            picked = keep[rows]
            out.put(i, Detections(p.xy[picked].astype(np.float32), team[rows][picked], role[rows][picked]), p.centre)
        return out


def static_in_image(uv: np.ndarray, frames: int) -> np.ndarray:
    """Detections [n] at an image position (2 px cells) that recurs in more than STATIC_SHARE of the calibrated
    frames: a score bug or logo over the pitch, not a person (people move, and so does the camera)."""
    if not len(uv):
        return np.zeros(0, bool)
    cells = np.floor(uv / 2).astype(int)
    _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.ravel()] > max(STATIC_MIN, STATIC_SHARE * frames)
