"""The search for a camera after a cut (step 4): broadcast views aimed anywhere on the pitch, scored cheaply."""

from __future__ import annotations

import numpy as np

from star.geometry import pitch
from star.positions.classical.calibration import (FIELD_RES, SEARCH_CAP, Observation, backproject_many,
                                                  pitch_model, project_many)

COVERAGES = (15.0, 22.0, 33.0, 50.0, 75.0)   # m across the view at its centre, for the search after a cut
MIN_SEEN = 14            # coarse model points (4.5 m apart) a view after a cut should show
SEARCH_BEAM = 16         # grid views whose neighbourhood is searched after a cut
SEARCH_KEEP = 3          # cameras refined after a cut


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
