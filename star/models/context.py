"""Context Capturers (STaR §3.4): learned latents that read the whole half, then the local window.

Global Context Capturer (GCC): the latents Z go through a Perceiver Resampler over the half's padded, masked global
features G, then through a second one over the local window L: Z' = GCC(G, L, Z). Used by spotting and captioning.

Position Context Capturer (PCC): the same two stages, with the global features first thinned (G -> G') and the
local features already enriched with positions by the SSS (L'): Z' = PCC(G', L', Z).
    Filter_alpha keeps every k-th frame (k = round(1 / alpha)): G_alpha; the others are G_(1-alpha).
    Memory re-inserts a frame g of G_(1-alpha) when max over g' in G_alpha of cos(g, g') < tau (nothing kept
    resembles it: it is informative). The cosine is taken on features centred on the half's mean: clip features
    often share one large component (the synthetic world's: cos ~ 0.9999 between any two raw frames), which
    would make every frame look like every other.
G' keeps the frames' original sample indices, so their time embeddings stay those of the full half.

Times are sample indices in the half: the local window starts at `anchor - T // 2` (star.train.datasets), the
global features are every `global_stride`-th sample.
"""

from __future__ import annotations

import torch
from torch import nn

from star.models.perceiver import PerceiverResampler


def window_times(anchor: torch.Tensor, length: int) -> torch.Tensor:
    """Sample indices [B, T] of local windows of `length` samples centred on `anchor` [B]."""
    return anchor[:, None] - length // 2 + torch.arange(length, device=anchor.device)


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
    each half's features alone, so the dataset computes it once per half (star.data.halves).

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


def compact(features: torch.Tensor, keep: torch.Tensor, times: torch.Tensor):
    """Move the kept frames to the front: -> features [B, G', D], mask [B, G'], times [B, G'] (G' = most kept)."""
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices  # kept first, in time order
    count = keep.sum(1)
    order = order[:, : max(1, int(count.max()))]  # [B, G']
    mask = torch.arange(order.shape[1], device=keep.device) < count[:, None]
    gathered = features.gather(1, order[..., None].expand(-1, -1, features.shape[-1]))
    return gathered, mask, times.gather(1, order)


class GlobalContextCapturer(nn.Module):
    """Raw features -> latents [B, R, dim]: project (D -> dim), resample the global features (unless `use_global`
    is off), then the local window."""

    def __init__(self, feature_dim: int, dim: int, num_latents: int = 8, depth: int = 6, dim_head: int = 96,
                 heads: int = 16, ff_mult: int = 4, dropout: float = 0.0, use_global: bool = True,
                 global_stride: int = 1, global_depth: int | None = None):
        super().__init__()
        self.global_stride = global_stride
        self.project = nn.Linear(feature_dim, dim)  # shared by the global and the local features
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        resampler = lambda layers: PerceiverResampler(dim, layers, dim_head, heads, ff_mult, dropout)
        # global stage: `global_depth` layers (the paper's two), then `depth` local layers
        self.global_resampler = resampler(global_depth or depth) if use_global else None
        self.local_resampler = resampler(depth)

    def select_global(self, global_, global_mask, times):
        """GCC reads every global frame."""
        return global_, global_mask, times

    def encode_global(self, global_: torch.Tensor, global_mask: torch.Tensor,
                      times: torch.Tensor | None = None) -> torch.Tensor:
        """Latents after the global stage, one row per half: [H, G, D] + [H, G] -> [H, R, dim]. It does not depend
        on the anchor, so it runs once per distinct half of a batch (and once per half at inference). `times`
        [H, G]: the rows' sample indices when they were selected already (the dataset's per-half store)."""
        h, g, _ = global_.shape
        latents = self.latents.expand(h, -1, -1)
        if self.global_resampler is None:
            return latents
        global_ = global_.float()  # the store may hold float16
        if times is None:
            times = (torch.arange(g, device=global_.device) * self.global_stride).expand(h, -1)  # [H, G]
            global_, global_mask, times = self.select_global(global_, global_mask, times)
        return self.global_resampler(self.project(global_), latents, global_mask, times)

    def encode_local(self, local: torch.Tensor, local_mask: torch.Tensor, anchor: torch.Tensor,
                     latents: torch.Tensor) -> torch.Tensor:
        times = window_times(anchor, local.shape[1])
        return self.local_resampler(self.project(local), latents, local_mask, times)

    def forward(self, local, local_mask, anchor, global_, global_mask, global_index=None,
                global_latents=None) -> torch.Tensor:
        """local [B, T, D] + [B, T], anchor [B], global_ [H, G, D] + [H, G] of the distinct halves, global_index
        [B] (each sample's half; None: H = B) -> latents [B, R, dim]. `global_latents` [H, R, dim], when given,
        are `encode_global`'s result, computed earlier for these halves."""
        if global_latents is None:
            global_latents = self.encode_global(global_, global_mask)  # [H, R, dim]
        if global_index is not None:
            global_latents = global_latents[global_index]  # [B, R, dim]
        return self.encode_local(local, local_mask, anchor, global_latents)


class PositionContextCapturer(GlobalContextCapturer):
    """The GCC over G' = Memory(Filter_alpha(G)); its local input is the SSS-enriched window L'."""

    def __init__(self, feature_dim: int, dim: int, alpha: float = 0.2, tau: float = 0.9, **kwargs):
        super().__init__(feature_dim, dim, **kwargs)
        self.alpha, self.tau = alpha, tau

    def select_global(self, global_, global_mask, times):
        keep = filter_memory(global_, global_mask, self.alpha, self.tau)
        return compact(global_, keep, times)
