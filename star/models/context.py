"""Context Capturers (STaR §3.4): learned latents that read the whole half, then the local window.

Global Context Capturer (GCC): the latents Z go through a Perceiver Resampler over the half's padded, masked global
features G, then through a second one over the local window L: Z' = GCC(G, L, Z). Used by spotting and captioning.

Position Context Capturer (PCC): the same two stages, with the global features first thinned (G -> G') and the
local features already enriched with positions by the SSS (L'): Z' = PCC(G', L', Z).
    Filter_alpha keeps every k-th frame (k = round(1 / alpha)): G_alpha; the others are G_(1-alpha).
    (Both steps: star.data.selection, where the per-half store computes them once per half.)
    Memory re-inserts a frame g of G_(1-alpha) when max over g' in G_alpha of cos(g, g') < tau (nothing kept
    resembles it: it is informative). The cosine is taken on features centred on the half's mean: clip features
    often share one large component (the synthetic world's: cos ~ 0.9999 between any two raw frames), which
    would make every frame look like every other.
G' keeps the frames' original sample indices, so their time embeddings stay those of the full half.

Times are sample indices in the half: the local window starts at `anchor - T // 2` (star.data.datasets), the
global features are every `global_stride`-th sample.
"""

from __future__ import annotations

import torch
from torch import nn

from star.data.selection import filter_memory
from star.models.perceiver import PerceiverResampler


def window_times(anchor: torch.Tensor, length: int) -> torch.Tensor:
    """Sample indices [B, T] of local windows of `length` samples centred on `anchor` [B]."""
    return anchor[:, None] - length // 2 + torch.arange(length, device=anchor.device)


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
