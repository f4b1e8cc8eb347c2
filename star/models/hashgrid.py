"""Multiresolution hash encoding of pitch positions (Mueller et al. 2022), as tiny-cuda-nn computes it.

The algorithm, level by level (tiny-cuda-nn `encodings/grid.h` and `common_device.h`, 2-D, linear interpolation):
    scale_l = 2^(l * log2(b)) * N_min - 1            (float32)
    res_l   = ceil(scale_l) + 1                      grid vertices per axis
    rows_l  = min(next_multiple(res_l^2, 8), 2^T)    the level's slice of the parameter table
    p       = x * scale_l + 0.5,  cell = floor(p),  frac = p - cell
    the 4 corners cell + {0,1}^2 are indexed densely (cx + cy * res_l) while res_l^2 fits rows_l, else by the
    XOR hash cx * 1 ^ cy * 2654435761 in uint32; either index is taken modulo rows_l; the corner features
    are blended with bilinear weights prod(frac or 1 - frac). Levels are concatenated level-major:
    output [N, n_levels * features_per_level].
Parameters are one table [sum(rows_l), features_per_level] initialised U(-1e-4, 1e-4); flattened row-major it is
exactly tiny-cuda-nn's parameter vector, so the tinycudann backend (CUDA only) reads the same weights.

Pitch positions in metres are mapped to [0, 1]^2 before encoding (`normalize_pitch`): the pitch plus a margin of
`PITCH_MARGIN` metres on every side (players and officials stand a little off the lines) spans the unit square,
x along the length, y across; anything farther out is clamped to the border.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from star.geometry.pitch import HALF_L, HALF_W

PITCH_MARGIN = 5.0  # metres around the pitch that still encode distinctly
PRIMES = (1, 2654435761)  # tiny-cuda-nn's coherent prime hash factors for dimensions 0 and 1
UINT32 = 0xFFFFFFFF
TABLE_INIT = 1e-4

try:  # tiny-cuda-nn's CUDA kernels, when installed (not on PyPI; no CPU path)
    import tinycudann as tcnn
except (ImportError, OSError):  # OSError: the package is there but finds no CUDA device
    tcnn = None


def normalize_pitch(xy: torch.Tensor) -> torch.Tensor:
    """Pitch metres (origin at the centre, x along the length) [..., 2] -> [0, 1]^2, clamped."""
    half = torch.tensor([HALF_L + PITCH_MARGIN, HALF_W + PITCH_MARGIN], dtype=xy.dtype, device=xy.device)
    return ((xy + half) / (2 * half)).clamp(0.0, 1.0)


def level_layout(n_levels: int, log2_table: int, base_resolution: int, per_level_scale: float, dims: int = 2):
    """Per level: scale (float32, as the CUDA kernel computes it), resolution, table rows, row offset, hashed."""
    log2_b = np.float32(math.log2(np.float32(per_level_scale)))
    levels, offset = [], 0
    for level in range(n_levels):
        scale = np.float32(np.exp2(np.float32(level) * log2_b) * np.float32(base_resolution) - np.float32(1.0))
        resolution = int(math.ceil(scale)) + 1
        dense_rows = resolution**dims
        rows = min(-(-dense_rows // 8) * 8, 2**log2_table)
        levels.append(dict(scale=float(scale), resolution=resolution, rows=rows, offset=offset,
                           hashed=dense_rows > rows))
        offset += rows
    return levels


class HashGridEncoding(nn.Module):
    """[N, 2] points in [0, 1]^2 -> [N, n_levels * features_per_level]."""

    def __init__(self, n_levels: int = 16, features_per_level: int = 2, log2_table: int = 19,
                 base_resolution: int = 16, per_level_scale: float = 1.447, backend: str = "auto"):
        super().__init__()
        self.config = dict(otype="HashGrid", n_levels=n_levels, n_features_per_level=features_per_level,
                           log2_hashmap_size=log2_table, base_resolution=base_resolution,
                           per_level_scale=per_level_scale)
        self.levels = level_layout(n_levels, log2_table, base_resolution, per_level_scale)
        self.out_dim = n_levels * features_per_level
        rows = sum(level["rows"] for level in self.levels)
        self.table = nn.Parameter(torch.empty(rows, features_per_level).uniform_(-TABLE_INIT, TABLE_INIT))
        column = lambda key, dtype: torch.tensor([level[key] for level in self.levels], dtype=dtype)
        self.register_buffer("scale", column("scale", torch.float32), persistent=False)
        self.register_buffer("resolution", column("resolution", torch.int64), persistent=False)
        self.register_buffer("rows", column("rows", torch.int64), persistent=False)
        self.register_buffer("offset", column("offset", torch.int64), persistent=False)
        # resolution grows with the level, so dense levels come first and hashed ones after
        self.n_dense = sum(not level["hashed"] for level in self.levels)
        if backend not in ("auto", "torch", "tcnn"):
            raise ValueError(f"hash grid backend must be auto, torch or tcnn, not {backend!r}")
        self.backend = backend
        self._tcnn = None  # tcnn's kernel object, built on the first CUDA call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend == "tcnn" or (self.backend == "auto" and tcnn is not None and x.is_cuda):
            return self._forward_tcnn(x)
        return self._forward_torch(x)

    def _forward_torch(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        # the kernel's fmaf(scale, x, 0.5f): one rounding, reproduced by computing in float64
        pos = (x.double()[:, None, :] * self.scale.double()[None, :, None] + 0.5).float()  # [N, levels, 2]
        cell = pos.floor()
        frac = pos - cell  # [N, levels, 2]
        # the two grid lines around the point on each axis, (uint32_t)(int) as in the kernel
        lines = (cell.long()[..., None] + torch.arange(2, device=x.device)) & UINT32  # [N, levels, axis, 2]
        gx, gy = lines.unbind(2)  # each [N, levels, 2]
        # corners [N, levels, 2 (y bit), 2 (x bit)], flattened y-major: (0,0), (1,0), (0,1), (1,1)
        k = self.n_dense
        dense = (gx[:, :k, None, :] + ((gy[:, :k] * self.resolution[:k, None]) & UINT32)[..., None]) & UINT32
        hashed = ((gx[:, k:, None, :] * PRIMES[0]) & UINT32) ^ ((gy[:, k:] * PRIMES[1]) & UINT32)[..., None]
        index = torch.cat([dense, hashed], dim=1).flatten(2) % self.rows[:, None]  # [N, levels, 4]
        wx, wy = torch.stack([1 - frac, frac], dim=-1).unbind(2)  # each [N, levels, 2]
        weight = (wy[..., :, None] * wx[..., None, :]).flatten(2)  # [N, levels, 4]
        rows = (index + self.offset[:, None]).flatten()  # [N * levels * 4]
        # F named, not -1: a batch with no player (N = 0) must reshape too
        per_level = self.table.shape[1]
        features = self.table.index_select(0, rows).view(n, len(self.levels), 4, per_level)  # [N, levels, 4, F]
        encoded = (features * weight[..., None]).sum(2)  # [N, levels, F]
        return encoded.reshape(n, self.out_dim)  # [N, levels * F], level-major like tiny-cuda-nn

    def _forward_tcnn(self, x: torch.Tensor) -> torch.Tensor:
        if tcnn is None or not x.is_cuda:
            raise RuntimeError("the tcnn hash grid backend needs tinycudann and a CUDA tensor")
        if self._tcnn is None:
            # keep only tcnn's native kernel object (no nn.Module, no parameters of its own): our `table` stays the
            # one parameter, in tcnn's layout; tcnn.Encoding.forward does the same call with its own params
            self._tcnn = tcnn.Encoding(2, self.config, dtype=torch.float32).native_tcnn_module
        n = x.shape[0]
        granularity = int(tcnn.modules._C.batch_size_granularity())
        padded = torch.nn.functional.pad(x.float(), (0, 0, 0, -n % granularity)).contiguous()
        params = self.table.reshape(-1).contiguous()  # [rows * F]
        out = tcnn.modules._module_function.apply(self._tcnn, padded, params, 1.0)
        return out[:n].float()


class BiasFreeMLP(nn.Sequential):
    """tiny-cuda-nn's FullyFusedMLP: bias-free Linear layers of `width` with ReLU, then a linear output."""

    def __init__(self, in_dim: int, width: int, hidden_layers: int, out_dim: int):
        layers: list[nn.Module] = []
        for i in range(hidden_layers):
            layers += [nn.Linear(in_dim if i == 0 else width, width, bias=False), nn.ReLU()]
        layers.append(nn.Linear(width if hidden_layers else in_dim, out_dim, bias=False))
        super().__init__(*layers)


class PositionEncoder(nn.Module):
    """Pitch positions (metres) [..., 2] -> hash grid -> bias-free MLP -> [..., out_dim]. With `extra_dim`, the MLP
    also reads `extra` [..., extra_dim] beside the grid's features (a person's team and role, one-hot)."""

    def __init__(self, out_dim: int = 24, n_levels: int = 16, features_per_level: int = 2, log2_table: int = 19,
                 base_resolution: int = 16, per_level_scale: float = 1.447, mlp_width: int = 64,
                 mlp_layers: int = 2, backend: str = "auto", extra_dim: int = 0):
        super().__init__()
        self.grid = HashGridEncoding(n_levels, features_per_level, log2_table, base_resolution, per_level_scale,
                                     backend)
        self.mlp = BiasFreeMLP(self.grid.out_dim + extra_dim, mlp_width, mlp_layers, out_dim)
        self.out_dim, self.extra_dim = out_dim, extra_dim

    def forward(self, xy: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        flat = normalize_pitch(xy.reshape(-1, 2).float())  # [N, 2]
        encoded = self.grid(flat)  # [N, grid.out_dim]
        if self.extra_dim:
            encoded = torch.cat([encoded, extra.reshape(-1, self.extra_dim).to(encoded.dtype)], dim=-1)
        return self.mlp(encoded).reshape(*xy.shape[:-1], self.out_dim)  # [..., out_dim]
