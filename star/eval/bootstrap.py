"""Seeded bootstrap resampling: resample groups (games) with replacement, average each resample, and take
percentile intervals. The evaluator's intervals and the diagnostics' rates use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def resample_counts(units: int, resamples: int, seed: int) -> np.ndarray:
    """[B, U]: how often each of `units` is drawn in each of `resamples` seeded draws of `units` with replacement."""
    picks = np.random.default_rng(seed).integers(0, units, size=(resamples, units))  # [B, U]
    return np.stack([np.bincount(row, minlength=units) for row in picks])


def bootstrap_means(values: np.ndarray, groups: Sequence, resamples: int, seed: int) -> np.ndarray:
    """Means of the columns of `values` [N, K] (NaN: missing, skipped) over `resamples` resamples that draw the
    distinct `groups` (one key per row; a drawn group brings all its rows) with replacement: -> [B, K]; 0 where
    a resample holds no value of a column. Rows as games' halves give the evaluator's intervals; rows as single
    captions grouped by game give a game-level interval of a rate."""
    keys = list(dict.fromkeys(groups))
    member = np.array([[g == k for g in groups] for k in keys], dtype=float)  # [U, N]: the rows of each group
    counts = resample_counts(len(keys), resamples, seed)  # [B, U] draws of each group
    weights = counts @ member  # [B, N]: how often each row is in the resample
    present = ~np.isnan(values)  # [N, K]
    total, seen = weights @ np.where(present, values, 0.0), weights @ present  # [B, K] each
    return np.divide(total, seen, out=np.zeros_like(total), where=seen > 0)


def percentile_interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central `level` percentile interval of each column of [B, K] resampled statistics."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail], axis=0)
    return lo, hi
