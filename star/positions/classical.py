"""Backend `classical`: calibrate the broadcast camera from the pitch lines it sees and find players as colour
blobs, from pixels only (made for the rendered synthetic broadcast; FACTS §6).

Per frame (RGB, from a frames cache):
1. masks: grass = green-dominant pixels (relative dominance: chroma subsampling tints white lines green);
   lines = unsaturated pixels brighter than the pixels 2 px away on both sides (thin: not the edge of a white
   shirt), amid grass, in connected pieces of at least 8 px that are not compact solid blocks (white shorts);
2. camera: a pan-tilt-zoom `Camera` (roll 0) at a rig position, fitted by robust least squares (soft-L1,
   analytic Jacobian, a small Levenberg-Marquardt loop: scipy's least_squares costs more in overhead than these
   3-parameter problems do) to two chamfer terms, both in pixels: every sampled line pixel back-projected to
   the ground lies on a model line (distance field of `pitch.line_points`, one quarter of the pitch by
   symmetry, turned into pixels by the local projection Jacobian), and every model line point projected into
   the picture lands on a line pixel (chessboard distance transform of the line mask at half resolution,
   capped at 12 px). The second term widens the basin (search, wide fits, rig); a frame's final fit uses the
   first alone, which is exact and needs no distance transform;
3. tracking: a frame starts from the last accepted camera (also across a cut), turned by the shift of the line
   pattern since that frame (phase correlation of the line masks at half resolution), at the zoom change
   (0.8-1.25x) that a cheap line score prefers; if that fit fails, a wide-basin fit (cap 30 px) follows;
4. search, when tracking fails (the first frame; after a long cut): broadcast views aimed anywhere on the pitch,
   15-75 m across, scored by a cheap chamfer on sparse samples; the best views' neighbourhoods are scored
   again, the best 3 get a wide then a final fit. The rig position starts nominal (`rig`) and is refined once
   per half, jointly with pan/tilt/zoom of `rig_frames` frames spread over the half;
5. acceptance (else `calibrated = False` and no people: never guessed): at least `min_line_pixels` line pixels
   and `min_grass_share` grass; after the fit, median line-pixel distance to the model <= `max_median_px`, at
   least `min_explained` of the line pixels within 2 px of it, at least `min_matched` of the model points in the
   picture within 2 px of a line pixel (exact distances, by a k-d tree of the line pixels), and at least 15
   model points (22 m of lines) in the picture. Close-ups, replays (another camera position) and crowd shots
   fail these;
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

Measured on 10 rendered halves of the default world (300 s, 398x224): every main-camera frame calibrated,
none of the cut frames; median ground error of the camera over the visible pitch ~0.13 m; people within 2 m:
recall ~0.89-0.91, precision ~0.90-0.92, median error ~0.21-0.22 m, team accuracy ~0.96-0.97. Cost: 7.5-8.5 ms
CPU per sample over a half (up to ~10 when the shared host is busy), one process on the project's 2-core
machine: reads ~1.2 ms, masks ~1.4, camera ~3, rig refinement ~0.7, blobs ~1.3, clustering included; plus
~0.8 s of imports per process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.spatial import cKDTree
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from star.data.cache import open_cache
from star.errors import InputError
from star.positions.backends import ROLE_INDEX, Detections, HalfSource, Localizer, Positions, samples_spanned
from star.geometry import pitch
from star.geometry.camera import Camera

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
ZOOM_STEPS = (0.8, 0.87, 0.93, 1.0, 1.07, 1.15, 1.25)   # zoom changes tried when tracking a frame
THETA_SCALE = np.array([0.05, 0.05, 0.1])   # typical steps of pan, tilt (rad) and log focal in a fit
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


# ---------------------------------------------------------------- masks
# Whole-frame numpy passes cost most here: the tests that need a neighbourhood run on the few candidate pixels.


def frame_masks(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grass and painted-line masks [H, W] of a frame."""
    # contiguous int16 channel planes (reductions over a length-3 last axis, and strided planes, are slow)
    r, g, b = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.int16)            # [3, H, W]
    grass = 4 * (g - np.maximum(r, b)) > g + 20      # green-dominant (relative: chroma subsampling tints lines)
    return grass, line_mask(r, g, b, grass)


def line_mask(r: np.ndarray, g: np.ndarray, b: np.ndarray, grass: np.ndarray) -> np.ndarray:
    """Painted-line pixels [H, W]: unsaturated, brighter than the pixels LINE_REACH px away on both sides
    (across a line of at most 2 * LINE_REACH - 1 px; not so at the edge of a white shirt or board), amid grass
    (over half of the 9x9 window around), in connected pieces of at least MIN_LINE_SEGMENT px that are not
    compact solid blocks (white shorts)."""
    luma = r + g + b
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    d = LINE_REACH
    h, w = luma.shape
    padded = np.empty((h + 2 * d, w + 2 * d), luma.dtype)                             # edge-padded (np.pad is slow)
    padded[d:-d, d:-d] = luma
    padded[:d, d:-d], padded[-d:, d:-d] = luma[0], luma[-1]
    padded[:, :d], padded[:, -d:] = padded[:, d:d + 1], padded[:, -d - 1:-d]
    across_rows = np.maximum(padded[:h, d:d + w], padded[2 * d:, d:d + w])           # above and below
    across_cols = np.maximum(padded[d:d + h, :w], padded[d:d + h, 2 * d:])           # left and right
    thin = (luma - across_rows > LINE_CONTRAST) | (luma - across_cols > LINE_CONTRAST)
    # unsaturated: 3 spread < 0.3 luma + 75, scaled by 10 to stay in integers
    flat = np.flatnonzero(thin & (30 * spread < 3 * luma + 750) & ~grass)
    flat = flat[grass_around(grass, flat)]
    lines = np.zeros_like(grass)
    lines.ravel()[flat] = True
    # specks (crowd noise at the pitch edge, a ball) and solid white blocks (shorts) are no lines
    labels, _ = ndimage.label(lines.view(np.uint8), structure=np.ones((3, 3)))
    size, top, bottom, left, right = components(labels, flat)                           # [k] each
    height, width = bottom - top, right - left
    # compact and solid: not a line (lines are long, or sparse in their box)
    solid = (np.maximum(height, width) <= 2.5 * np.minimum(height, width)) & (size >= 0.6 * height * width)
    keep = (size >= MIN_LINE_SEGMENT) & ~solid
    lines.ravel()[flat[~keep[labels.ravel()[flat] - 1]]] = False
    return lines


def grass_around(grass: np.ndarray, flat: np.ndarray, reach: int = 4) -> np.ndarray:
    """[n] whether over half of the (2 reach + 1)^2 window around each flat pixel index is grass (mirrored at
    the border): column sums of running totals, on the candidates only."""
    h, w = grass.shape
    side = 2 * reach + 1
    padded = np.pad(grass.view(np.uint8), reach, mode="symmetric")                    # [H + 2r, W + 2r]
    # running totals down, in uint8 on purpose: they wrap around, but a difference of two (a window's count,
    # at most side^2 < 256) comes out exact in uint8 arithmetic, and the sum is 3x faster than in int16
    totals = np.zeros((h + side, w + 2 * reach), np.uint8)
    totals[1:] = padded.cumsum(0, dtype=np.uint8)
    rows, cols = np.divmod(flat, w)
    top = rows * totals.shape[1] + cols                                               # window's top-left column
    window = top[None] + np.arange(side)[:, None]                                     # [side, n]
    below = totals.ravel()[window + side * totals.shape[1]]
    return (below - totals.ravel()[window]).sum(0, dtype=np.int32) > side * side / 2


def components(labels: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pixel count and bounding box (top, bottom, left, right; bottom and right exclusive) [k] each of the k
    components of a label image, from the flat indices of its labelled pixels (sparse: cheaper than
    ndimage.find_objects, which scans the whole image)."""
    label = labels.ravel()[flat] - 1                                                   # [n] 0-based component
    order = np.argsort(label, kind="stable")
    starts = np.flatnonzero(np.diff(label[order], prepend=-1))                        # [k] first pixel of each
    if not len(starts):
        return (np.zeros(0, int),) * 5
    size = np.diff(np.append(starts, len(order)))
    rows, cols = np.divmod(flat[order], labels.shape[1])
    return (size, np.minimum.reduceat(rows, starts), np.maximum.reduceat(rows, starts) + 1,
            np.minimum.reduceat(cols, starts), np.maximum.reduceat(cols, starts) + 1)


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
    u, v, depth = project_many(thetas, rig, model.coarse, obs.size)                  # [K, m] each
    inside = (depth > 1) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    dt = np.ascontiguousarray(obs.dt[..., 0])                                        # half resolution
    cols = np.clip(u / 2, 0, dt.shape[1] - 1).astype(np.intp)
    rows = np.clip(v / 2, 0, dt.shape[0] - 1).astype(np.intp)
    # mean over the model points in view, a view with fewer than MIN_SEEN paying `cap` for each one missing:
    # else a tight view of one line would score as well as a true wide one
    seen = inside.sum(1)
    model_sum = np.where(inside, np.minimum(dt.ravel()[rows * dt.shape[1] + cols], cap), 0).sum(1)
    model_cost = (model_sum + cap * np.maximum(MIN_SEEN - seen, 0)) / np.maximum(seen, MIN_SEEN)
    return model_cost + line_scores(obs, rig, thetas, cap)


def line_scores(obs: Observation, rig: np.ndarray, thetas: np.ndarray, cap: float) -> np.ndarray:
    """A cheap one-sided chamfer score [K] of cameras [K, 3]: px from sampled line pixels to the model (nearest
    cell of the pitch field)."""
    model = pitch_model()
    sample = obs.line_uv[:: max(1, len(obs.line_uv) // 40)]
    x, y = backproject_many(thetas, rig, sample, obs.size)                           # [K, n] each
    ok = ~np.isnan(x)
    field = model.table[..., 0]                                                      # a quarter: |x|, |y|
    rows = np.minimum(np.round(np.abs(np.where(ok, x, 0)) / FIELD_RES), field.shape[0] - 1)
    cols = np.minimum(np.round(np.abs(np.where(ok, y, 0)) / FIELD_RES), field.shape[1] - 1)
    metres = field[rows.astype(np.intp), cols.astype(np.intp)]
    # metres -> px by focal / distance from the camera (foreshortening ignored: fine for ranking)
    px = metres * np.exp(thetas[:, 2:3]) / np.sqrt((x - rig[0]) ** 2 + (y - rig[1]) ** 2 + rig[2] ** 2)
    return np.where(ok, np.minimum(px, cap), cap).mean(1)


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
    colour: np.ndarray    # [k, 3] shirt RGB (see find_blobs)
    uv: np.ndarray        # [k, 2] foot pixels
    centre: np.ndarray    # [2] ground point under the image centre


@dataclass
class Blob:
    foot_uv: np.ndarray       # [2] px, bottom edge of the feet
    colour: np.ndarray        # [3] shirt RGB (see find_blobs)


def near_pitch(camera: Camera, size: tuple[int, int], step: int = 4) -> np.ndarray:
    """[H, W] pixels whose ground point lies on the pitch or within PITCH_MARGIN of it (on a `step`-px grid)."""
    w, h = size
    right, down, forward = _axes_with_derivatives(camera.pan, camera.tilt)[:3]      # camera.rotation(), cached
    a = (np.arange(0, w, step) + step / 2 - w / 2) / camera.focal                     # [w/step]
    b = (np.arange(0, h, step) + step / 2 - h / 2) / camera.focal                     # [h/step]
    # the ray through each grid pixel, per world axis, as an outer sum [h/step, w/step]
    ray = [a[None] * right[k] + b[:, None] * down[k] + forward[k] for k in range(3)]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -camera.z / ray[2]                                                        # reach z = 0
        near = (s > 0) & pitch.on_pitch(camera.x + s * ray[0], camera.y + s * ray[1], PITCH_MARGIN)
    rows, cols = near.shape
    blocks = np.broadcast_to(near[:, None, :, None], (rows, step, cols, step))          # each grid cell's pixels
    return blocks.reshape(rows * step, cols * step)[:h, :w]


def find_blobs(rgb: np.ndarray, obs: Observation, camera: Camera) -> list[Blob]:
    """Person-sized blobs of non-grass, non-line pixels standing on the pitch. A blob as wide as a few people
    side by side is split into equal columns; wider ones (boards, crowd) and blobs cut by the bottom edge of
    the picture (feet unseen) are dropped. Worked out over all pixels at once, grouped by blob part (a loop
    over blobs costs more in numpy calls than the pixels do)."""
    h, w = rgb.shape[:2]
    candidates = ~(obs.grass | obs.lines) & near_pitch(camera, (w, h))
    # a vertical opening removes what is less than 3 px tall: line pixels beside a player, which the line mask
    # misses because they are not surrounded by grass, would otherwise join his blob
    core = candidates[:-2] & candidates[1:-1] & candidates[2:]                          # [H-2, W] 3-px erosion
    candidates = np.zeros_like(candidates)
    for shift in range(3):
        candidates[shift:h - 2 + shift] |= core
    labels, _ = ndimage.label(candidates.view(np.uint8), structure=np.ones((3, 3)))
    flat = np.flatnonzero(candidates)
    _, top, bottom, left, right = components(labels, flat)                               # [k] each
    expected = person_heights(camera, np.stack([(left + right) / 2, bottom], 1))
    tall, wide = bottom - top, right - left
    side_by_side = wide / np.maximum(PERSON_WIDTH * expected, 1e-9)
    person_sized = (bottom < h) & (tall >= 0.5 * expected) & (tall <= 2.5 * expected) & (side_by_side <= 4)
    # blur widens a figure by a pixel or two: split only from 1.7 people wide
    parts = np.maximum(1, (np.minimum(side_by_side, 4) + 0.3).astype(int))               # [k] at most 4

    # the pixels of person-sized blobs, each in its part: column j of parts, from round(j * width / parts)
    label = labels.ravel()[flat] - 1                                                     # [n] 0-based blob
    flat, label = flat[person_sized[label]], label[person_sized[label]]
    rows, cols = np.divmod(flat, w)
    part = np.zeros(len(flat), np.intp)
    for j in range(1, 4):
        part += (j < parts[label]) & (cols - left[label] >= np.round(j * wide[label] / parts[label]))
    group = (np.cumsum(parts) - parts)[label] + part                                      # [n] part id
    order = np.argsort(group, kind="stable")                                              # row-major within
    group, rows, cols, flat, label = group[order], rows[order], cols[order], flat[order], label[order]
    starts = np.flatnonzero(np.diff(group, prepend=-1))                                  # [q] first pixel
    if not len(starts):
        return []
    count = np.diff(np.append(starts, len(group)))
    index = np.repeat(np.arange(len(starts)), count)                                     # [n] part 0..q-1
    part_top, part_bottom = np.minimum.reduceat(rows, starts), np.maximum.reduceat(rows, starts) + 1
    height, size = part_bottom - part_top, expected[label[starts]]

    # feet: the mean column of a part's bottom row, at its lower edge
    feet = rows == part_bottom[index] - 1
    foot_u = np.bincount(index[feet], cols[feet], len(starts)) / np.bincount(index[feet], minlength=len(starts))
    foot_uv = np.stack([foot_u + 0.5, part_bottom.astype(float)], 1) - COLOUR_BLEED      # [q, 2]

    # shirt: the band 20-50% down the figure (all of it when the band is empty); the mean of its most saturated
    # third, as chroma subsampling bleeds grass and shorts into a small figure, least at its most colourful pixels
    band = (rows >= (part_top + (0.2 * height).astype(int))[index]) & \
           (rows <= (part_top + (0.5 * height).astype(int))[index])
    band |= np.bincount(index[band], minlength=len(starts))[index] == 0
    colours = rgb.reshape(-1, 3)[flat[band]].astype(np.float32)                          # [m, 3]
    saturation = colours.max(1) - colours.min(1)
    by_part = np.lexsort((-saturation, index[band]))                                     # stable: row-major ties
    members = index[band][by_part]
    rank = np.arange(len(members)) - np.searchsorted(members, members)                   # place within its part
    top_third = rank < np.maximum(1, np.bincount(members, minlength=len(starts)) // 3)[members]
    taken = members[top_third]
    shirt = np.stack([np.bincount(taken, colours[by_part][top_third, c], len(starts)) for c in range(3)], 1)
    shirt /= np.bincount(taken, minlength=len(starts))[:, None]                           # [q, 3]

    keep = (height >= 0.5 * size) & (count >= 0.08 * size ** 2)
    return [Blob(uv, colour) for uv, colour in zip(foot_uv[keep], shirt[keep], strict=True)]


def person_heights(camera: Camera, foot_uv: np.ndarray) -> np.ndarray:
    """Expected image height (px) [k] of a person whose feet are at pixels [k, 2]; 0 where unknown."""
    axes = _axes_with_derivatives(camera.pan, camera.tilt)[:3]                        # camera.rotation(), cached
    # the feet in camera coordinates: s * (a, b, 1), s the distance along the optical axis to the ground
    a = (foot_uv[:, 0] - camera.width / 2) / camera.focal
    b = (foot_uv[:, 1] - camera.height / 2) / camera.focal
    s = -camera.z / (a * axes[0, 2] + b * axes[1, 2] + axes[2, 2])                  # [k]
    # the head PERSON_HEIGHT above the feet (z is down): the camera's z-axis components times -height
    head_y = s * b - PERSON_HEIGHT * axes[1, 2]
    head_z = s - PERSON_HEIGHT * axes[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        head_v = camera.focal * head_y / head_z + camera.height / 2
        return np.where((s > 0) & (head_z > 0), foot_uv[:, 1] - head_v, 0.0)


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
        # one BLAS thread: the products here are small, and more threads only spin (a third more CPU time)
        with threadpool_limits(1):
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
                progress = tqdm(picks, desc=f"positions {source.game} half {source.half}", unit="frame",
                                leave=False)
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
        theta = refine(theta, rig, obs, cap=WIDE_CAP, max_evals=10)
    # the final fit by the line pixels alone: precise (exact geometry, full resolution) and enough from a start
    # in its basin, it needs no distance transform of the frame; its residuals are the summary's
    theta, line_r = robust_least_squares(lambda x: line_term(x, rig, obs), theta, THETA_SCALE, max_evals=20)
    return summarise(theta, rig, obs, line_r=line_r)


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
        wide = [refine(theta, self.rig, obs, cap=WIDE_CAP, max_evals=10)
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
        # phase correlation sees no zoom: try a few zooms (and the unshifted camera) by a cheap line score
        zooms = np.log(ZOOM_STEPS)
        options = np.concatenate([start + np.outer(zooms, [0, 0, 1]), theta + np.outer(zooms, [0, 0, 1])])
        start = options[np.argmin(line_scores(obs, self.rig, options, WIDE_CAP))]
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
