"""NetVLAD pooling (Arandjelovic et al., CVPR 2016) over a padded, masked sequence of frame features.

Frames are L2-normalised first (as SoccerNet's NetVLAD does), so the pooling ignores feature scale. Each frame
is softly assigned to K learnt cluster centres; the pooled descriptor is, per cluster, the
assignment-weighted sum of the frames' residuals to that centre, L2-normalised per cluster
("intra-normalisation"), then flattened and L2-normalised as a whole: [B, T, D] -> [B, K * D].
SDVC (SoccerNet/sn-caption) uses it to pool its spotting and captioning windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NetVLAD(nn.Module):
    def __init__(self, dim: int, clusters: int):
        super().__init__()
        self.assign_logits = nn.Linear(dim, clusters)  # w_k . x + b_k, the soft-assignment scores
        self.centres = nn.Parameter(torch.randn(clusters, dim) / dim**0.5)
        self.out_dim = clusters * dim

    def assignments(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, T, D], [B, T] (True = real frame) -> [B, T, K]: a softmax over clusters, zero on padding."""
        return self.assign_logits(F.normalize(x, dim=-1)).softmax(dim=-1) * mask.unsqueeze(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = self.assignments(x, mask)  # [B, T, K]
        # sum_t a_tk (x_t - c_k) = (A^T X)_k - (sum_t a_tk) c_k, over the normalised frames
        residuals = torch.einsum("btk,btd->bkd", weights, F.normalize(x, dim=-1))
        residuals = residuals - weights.sum(dim=1).unsqueeze(-1) * self.centres
        residuals = F.normalize(residuals, dim=-1)  # [B, K, D]; a fully padded sample stays 0, not NaN
        return F.normalize(residuals.flatten(1), dim=-1)  # [B, K * D]
