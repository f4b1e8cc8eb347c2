"""STaR's Filter/Memory frame selection (§3.4, the Position Context Capturer's G -> G'): a function of a half's
global features alone, so the per-half store (star.data.halves) computes it once per half; the model
(star.models.context) runs it only on batches that come without a selection.

    Filter_alpha keeps every k-th frame (k = round(1 / alpha)): G_alpha; the others are G_(1-alpha).
    Memory re-inserts a frame g of G_(1-alpha) when max over g' in G_alpha of cos(g, g') < tau (nothing kept
    resembles it: it is informative). The cosine is taken on features centred on the half's mean: clip features
    often share one large component (the synthetic world's: cos ~ 0.9999 between any two raw frames), which
    would make every frame look like every other.
"""

from __future__ import annotations

import torch

# Memory's cosines are screened in bfloat16 and recomputed in float32 only where the screen cannot decide: for unit
# vectors the bfloat16 inputs (relative error 2^-8 each), the float32 accumulation (~n 2^-24 over n = D terms) and
# the bfloat16 output (2^-8) move a cosine by at most 2^-7 + D 2^-24 + 2^-8 (0.012 at Baidu's D = 8576, by
# Cauchy-Schwarz on the products), so a screened maximum farther than SCREEN_MARGIN from tau decides as float32
# would. Below SCREEN_MIN_MACS multiply-adds a half is computed in float32 directly.
SCREEN_MARGIN = 0.02
SCREEN_MIN_MACS = 50_000_000
ROWS_PER_CHUNK = 512  # frames compared at once: a [512, D] float32 temporary, never a copy of the half


def _unit(rows: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    rows = rows - mean
    return rows / rows.norm(dim=-1, keepdim=True).clamp(min=1e-12)


@torch.no_grad()
def filter_memory(features: torch.Tensor, mask: torch.Tensor, alpha: float, tau: float,
                  screen: bool | None = None) -> torch.Tensor:
    """Which frames G' keeps: [H, G, D] features + [H, G] mask -> [H, G] bool (see the module doc); a function of
    each half's features alone, so the per-half store computes it once per half (star.data.halves).

    Only the frames Filter drops are compared (with the ones it keeps), a chunk at a time; `screen` (default: when
    a half's comparisons exceed SCREEN_MIN_MACS, on a CPU with bfloat16 matrix units or a GPU) takes the cosines
    in bfloat16 first and recomputes in float32 the frames whose best cosine lies within SCREEN_MARGIN of tau:
    the same frames as float32 throughout, at a third of the cost on Baidu halves (bench/README.md)."""
    k = max(1, round(1 / alpha))
    keep = torch.zeros_like(mask)
    keep[:, ::k] = True
    keep &= mask
    for h in range(features.shape[0]):
        x, valid = features[h], mask[h]
        kept = keep[h].nonzero().flatten()
        others = (valid & ~keep[h]).nonzero().flatten()
        if not len(kept):  # nothing to resemble: every valid frame is novel
            keep[h] = valid
            continue
        if not len(others):
            continue
        count = valid.sum().clamp(min=1)
        mean = (valid[None].to(x.dtype) @ x).float() / count  # [1, D]: the half's mean, no [G, D] temporary
        anchors = _unit(x[kept].float(), mean)  # [C, D]
        use_screen = screen
        if use_screen is None:
            use_screen = len(others) * len(kept) * x.shape[-1] >= SCREEN_MIN_MACS and (
                x.is_cuda or torch.ops.mkldnn._is_mkldnn_bf16_supported())
        anchors_bf16 = anchors.bfloat16() if use_screen else None
        for start in range(0, len(others), ROWS_PER_CHUNK):
            rows = others[start:start + ROWS_PER_CHUNK]
            unit = _unit(x[rows].float(), mean)  # [c, D]
            if use_screen:
                best = (unit.bfloat16() @ anchors_bf16.T).float().amax(-1)  # [c]
                unsure = (best - tau).abs() < SCREEN_MARGIN
                if unsure.any():
                    best[unsure] = (unit[unsure] @ anchors.T).amax(-1)
            else:
                best = (unit @ anchors.T).amax(-1)
            keep[h, rows[best < tau]] = True
    return keep
