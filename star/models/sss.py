"""Spatial Semantic Synthesizer (STaR §3.3): player positions enrich each frame's video feature.

Per frame t: the players' pitch positions -> hash grid -> bias-free MLP -> P_t [players, 24] (padded slots
masked); the frame feature X_t [D] is brought down to d' (W_down) and used as the query of a perceiver attention
over P_t (projected to d'); the result goes back up to D (W_up) and is added to X_t:

    X~_t = PerceiverAttn(P_t, X_t W_down) W_up + X_t

W_up starts at zero, so an untrained SSS is the identity; a frame with no detected player is left exactly as it
was (it has no spatial information to add).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from star.models.hashgrid import PositionEncoder
from star.models.perceiver import PerceiverAttention


class SpatialSemanticSynthesizer(nn.Module):
    """features [B, T, D], positions [B, T, P, 2] metres, positions_mask [B, T, P] -> features [B, T, D]."""

    def __init__(self, feature_dim: int, low_dim: int = 64, heads: int = 4, dim_head: int = 16,
                 position_encoder: PositionEncoder | None = None):
        super().__init__()
        self.encode_positions = position_encoder or PositionEncoder()
        self.down = nn.Linear(feature_dim, low_dim, bias=False)
        self.players_in = nn.Linear(self.encode_positions.out_dim, low_dim, bias=False)
        self.attend = PerceiverAttention(low_dim, dim_head, heads)
        self.up = nn.Linear(low_dim, feature_dim, bias=False)
        nn.init.zeros_(self.up.weight)

    def player_encodings(self, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, T, P, 2] metres + [B, T, P] -> [B, T, P, out_dim], zero on empty slots; only real players encoded."""
        encoded = positions.new_zeros(*mask.shape, self.encode_positions.out_dim)
        encoded[mask] = self.encode_positions(positions[mask])  # [M, 2] -> [M, out_dim] for the M real players
        return encoded

    def forward(self, features: torch.Tensor, positions: torch.Tensor, positions_mask: torch.Tensor):
        b, t, _ = features.shape
        players = self.players_in(self.player_encodings(positions, positions_mask))  # [B, T, P, d']
        players = rearrange(players, "b t p c -> (b t) p c")
        query = rearrange(self.down(features), "b t c -> (b t) 1 c")
        mask = rearrange(positions_mask, "b t p -> (b t) p")
        fused = self.up(self.attend(players, query, mask))  # [(B T), 1, D]
        has_players = positions_mask.any(-1, keepdim=True)  # [B, T, 1]
        return features + rearrange(fused, "(b t) 1 c -> b t c", b=b, t=t) * has_players
