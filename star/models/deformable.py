"""Multi-scale deformable attention over a 1-D (temporal) feature pyramid, in its reference formulation (Zhu et al.,
Deformable DETR, 2021; PDVC's encoder and decoder): each query looks at a few learned sampling points around its
reference point on every level, reads the values there by linear interpolation (`F.grid_sample`, no custom CUDA
op) and sums them with learned attention weights.

Shape legend (einops): b batch, q queries, s flattened tokens of all levels, t one level's length, h heads,
d head width, c model width (h d), l levels, p sampling points per head and level.

Positions are normalised to [0, 1] over a level's padded length: position x is read at sample x * t - 0.5
(grid_sample with align_corners=False), samples off the level read zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def deformable_sample(values: list[torch.Tensor], locations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """values: per level [b, h, d, t_l]; locations, weights [b, q, h, l, p] -> [b, q, (h d)]: the weighted sum of
    each head's values linearly interpolated at its sampling locations."""
    b = locations.shape[0]
    out = 0
    for level, value in enumerate(values):
        image = rearrange(value, "b h d t -> (b h) d 1 t")  # a 1-pixel-high image per head
        x = rearrange(2 * locations[:, :, :, level] - 1, "b q h p -> (b h) q p")
        grid = torch.stack([x, torch.zeros_like(x)], dim=-1)  # [(b h), q, p, 2]: (x, y = the only row)
        sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        w = rearrange(weights[:, :, :, level], "b q h p -> (b h) 1 q p")
        out = out + (sampled * w).sum(-1)  # [(b h), d, q]
    return rearrange(out, "(b h) d q -> b q (h d)", b=b)


class DeformableAttention(nn.Module):
    """Queries [b, q, c] attend to a flattened multi-scale sequence [b, s, c] at their reference points [b, q, l]."""

    def __init__(self, dim: int, heads: int, levels: int, points: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not a multiple of {heads} heads")
        self.heads, self.levels, self.points = heads, levels, points
        self.offsets = nn.Linear(dim, heads * levels * points)
        self.weights = nn.Linear(dim, heads * levels * points)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # offsets start at zero weight and a fixed spread: head k looks forward (even k) or backward (odd k), its
        # point j at j + 1 samples of each level; attention starts uniform
        nn.init.zeros_(self.offsets.weight)
        sign = torch.tensor([1.0 if k % 2 == 0 else -1.0 for k in range(self.heads)]) * (
            1 + torch.arange(self.heads) // 2)
        spread = sign[:, None, None] * torch.arange(1, self.points + 1)[None, None, :].float()
        with torch.no_grad():
            self.offsets.bias.copy_(spread.expand(self.heads, self.levels, self.points).flatten())
        nn.init.zeros_(self.weights.weight)
        nn.init.zeros_(self.weights.bias)
        for layer in (self.value, self.out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, query: torch.Tensor, reference: torch.Tensor, source: torch.Tensor, lengths: list[int],
                valid: torch.Tensor) -> torch.Tensor:
        """query [b, q, c]; reference [b, q, l] in [0, 1] per level; source [b, s, c] (levels concatenated,
        `lengths` samples each); valid [b, s] (False: padding, read as zero) -> [b, q, c]."""
        value = self.value(source).masked_fill(~valid[..., None], 0.0)
        values = [rearrange(v, "b t (h d) -> b h d t", h=self.heads) for v in value.split(lengths, dim=1)]
        offsets = rearrange(self.offsets(query), "b q (h l p) -> b q h l p", h=self.heads, l=self.levels)
        scale = torch.tensor(lengths, dtype=query.dtype, device=query.device)[None, None, None, :, None]
        locations = reference[:, :, None, :, None] + offsets / scale  # an offset of 1 is one sample of its level
        weights = rearrange(self.weights(query), "b q (h lp) -> b q h lp", h=self.heads).softmax(-1)
        weights = rearrange(weights, "b q h (l p) -> b q h l p", l=self.levels)
        return self.out(deformable_sample(values, locations.to(value.dtype), weights.to(value.dtype)))


def sine_positions(valid: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's sine embedding of a 1-D sequence [b, t] -> [b, t, dim]: positions counted over the valid samples and
    normalised to (0, 2 pi]."""
    position = valid.float().cumsum(1)
    position = position / (position[:, -1:].clamp(min=1)) * 2 * math.pi
    freq = temperature ** (2 * torch.arange(dim // 2, device=valid.device) / dim)  # one per (sin, cos) pair
    angles = position[..., None] / freq  # [b, t, dim/2]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)


def encoder_references(lengths: list[int], ratios: torch.Tensor) -> torch.Tensor:
    """Reference points of every token of the flattened levels [b, s, l]: its centre, in the valid part of its
    own level, then mapped onto every level (`ratios` [b, l]: valid share of each level)."""
    points = []
    for level, t in enumerate(lengths):
        centre = (torch.arange(t, device=ratios.device, dtype=ratios.dtype) + 0.5) / t  # [t]
        points.append(centre[None] / ratios[:, level:level + 1])  # [b, t]: within the valid part
    return torch.cat(points, 1)[:, :, None] * ratios[:, None, :]


def valid_ratios(masks: list[torch.Tensor]) -> torch.Tensor:
    """Share of each level that is not padding [b, l] (at least one sample)."""
    return torch.stack([m.float().sum(1).clamp(min=1) / m.shape[1] for m in masks], 1)


__all__ = ["DeformableAttention", "deformable_sample", "encoder_references", "sine_positions", "valid_ratios"]
