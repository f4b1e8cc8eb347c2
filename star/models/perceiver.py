"""Perceiver attention and the Perceiver Resampler (Flamingo), with padding masks.

Latents are the queries; keys and values come from [LN(media + time embedding); LN(latents)], so every latent
can always attend to the latents themselves: a sample whose media is all padding gets finite outputs.

Shape legend (einops): b batch, n media tokens, r latents, h heads, d head width, c model width.
Masks are bool with True = a real token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def sinusoidal_embedding(times: torch.Tensor, dim: int) -> torch.Tensor:
    """Sample indices (any real value, negative included) [...] -> [..., dim] fixed sinusoids."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=times.device) / half)  # [half]
    angles = times.float()[..., None] * freqs  # [..., half]
    return torch.cat([angles.sin(), angles.cos(), angles.new_zeros(*angles.shape[:-1], dim - 2 * half)], dim=-1)


class PerceiverAttention(nn.Module):
    """Cross-attention from latents [b, r, c] to [media; latents]; -> [b, r, c] (no residual)."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, dropout: float = 0.0):
        super().__init__()
        inner = dim_head * heads
        self.heads, self.dropout = heads, dropout
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media: torch.Tensor, latents: torch.Tensor, media_mask: torch.Tensor | None = None):
        b, n, _ = media.shape
        if media_mask is None:
            media_mask = torch.ones(b, n, dtype=torch.bool, device=media.device)
        # zero the padding so that nothing stored there (even NaN) can leak through a zero attention weight
        media = self.norm_media(media.masked_fill(~media_mask[..., None], 0.0))
        latents = self.norm_latents(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([media, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
        latent_mask = media_mask.new_ones(b, latents.shape[1])
        key_mask = torch.cat([media_mask, latent_mask], dim=1)[:, None, None, :]  # [b, 1, 1, n + r]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.to_out(rearrange(out, "b h r d -> b r (h d)"))


def feed_forward(dim: int, mult: int = 4, dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mult * dim, bias=False), nn.GELU(),
                         nn.Dropout(dropout), nn.Linear(mult * dim, dim, bias=False))


class PerceiverResampler(nn.Module):
    """Media [b, n, c] (+ sample times [b, n] for the time embedding) and latents [b, r, c] -> latents [b, r, c].

    `depth` layers of (perceiver attention + residual, feed-forward + residual), then a final LayerNorm.
    """

    def __init__(self, dim: int, depth: int = 6, dim_head: int = 64, heads: int = 8, ff_mult: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads, dropout), feed_forward(dim, ff_mult, dropout)])
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, media: torch.Tensor, latents: torch.Tensor, media_mask: torch.Tensor | None = None,
                times: torch.Tensor | None = None) -> torch.Tensor:
        if times is None:
            times = torch.arange(media.shape[1], device=media.device).expand(media.shape[0], -1)  # [b, n]
        media = media + sinusoidal_embedding(times, self.dim)
        for attend, ff in self.layers:
            latents = attend(media, latents, media_mask) + latents
            latents = ff(latents) + latents
        return self.norm(latents)
