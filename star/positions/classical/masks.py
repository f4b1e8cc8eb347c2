"""Grass and painted-line masks of a frame, and connected-component boxes (step 1 of the classical backend)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

LINE_REACH = 2           # px: a line pixel is compared with pixels this far on either side
LINE_CONTRAST = 45       # luma (r + g + b) a line pixel exceeds both sides by
MIN_LINE_SEGMENT = 8     # px: smaller connected pieces of the line mask are noise

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
