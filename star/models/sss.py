"""Spatial Semantic Synthesizer (STaR §3.3): player positions enrich each frame's video feature.

Per frame t: the players' pitch positions -> hash grid -> bias-free MLP -> P_t [players, 24] (padded slots
masked); the frame feature X_t [D] is brought down to d' (W_down) and used as the query of a perceiver attention
over P_t (projected to d'); the result goes back up to D (W_up) and is added to X_t:

    X~_t = PerceiverAttn(P_t, X_t W_down) W_up + X_t

Two designs of the attention in d' (`blocks`):
- 0 (ours, the tiny preset's): one perceiver attention per frame, exactly the formula above.
- n >= 1 (the authors' code: 2 blocks at d' = 24, 16 heads x 96): n pre-LayerNorm residual blocks of
  [self-attention among the window's frame queries, perceiver attention from each frame query to its own players,
  feed-forward], then a LayerNorm; W_up maps the result back to D.
The perceiver attention's keys are the players and the query itself (Eq. 4), so a frame without players stays
finite. W_up starts at zero, so an untrained SSS is the identity; a frame with no detected player is left exactly
as it was (it has no spatial information to add).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from star.models.hashgrid import PositionEncoder
from star.models.perceiver import PerceiverAttention, feed_forward


class SelfAttention(nn.Module):
    """Multi-head self-attention over [b, n, c] with a key mask [b, n] (True = real); -> [b, n, c], no residual."""

    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim_head * heads, bias=False)
        self.to_out = nn.Linear(dim_head * heads, dim, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        mask = mask | ~mask.any(-1, keepdim=True)  # a row with no real token attends to all rather than give NaN
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class SSSBlock(nn.Module):
    """[self-attention among frames, perceiver attention to each frame's players, feed-forward], residual."""

    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.self_attend = SelfAttention(dim, dim_head, heads)
        self.cross_attend = PerceiverAttention(dim, dim_head, heads)  # normalises its inputs itself
        self.ff = feed_forward(dim)

    def forward(self, query: torch.Tensor, frames_mask: torch.Tensor, players: torch.Tensor,
                players_mask: torch.Tensor) -> torch.Tensor:
        """query [B, T, d'], frames_mask [B, T], players [(B T), P, d'], players_mask [(B T), P] -> [B, T, d']."""
        b, t, _ = query.shape
        query = query + self.self_attend(self.norm(query), frames_mask)
        per_frame = rearrange(query, "b t c -> (b t) 1 c")
        query = query + rearrange(self.cross_attend(players, per_frame, players_mask), "(b t) 1 c -> b t c", b=b, t=t)
        return query + self.ff(query)


class SpatialSemanticSynthesizer(nn.Module):
    """features [B, T, D], positions [B, T, P, 2] metres, positions_mask [B, T, P] (+ frames_mask [B, T])
    -> features [B, T, D]."""

    def __init__(self, feature_dim: int, low_dim: int = 64, heads: int = 4, dim_head: int = 16,
                 position_encoder: PositionEncoder | None = None, blocks: int = 0):
        super().__init__()
        self.encode_positions = position_encoder or PositionEncoder()
        self.down = nn.Linear(feature_dim, low_dim, bias=False)
        self.players_in = nn.Linear(self.encode_positions.out_dim, low_dim, bias=False)
        if blocks:
            self.blocks = nn.ModuleList(SSSBlock(low_dim, dim_head, heads) for _ in range(blocks))
            self.norm = nn.LayerNorm(low_dim)
        else:
            self.attend = PerceiverAttention(low_dim, dim_head, heads)
        self.up = nn.Linear(low_dim, feature_dim, bias=False)
        nn.init.zeros_(self.up.weight)

    def player_encodings(self, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, T, P, 2] metres + [B, T, P] -> [B, T, P, out_dim], zero on empty slots; only real players encoded."""
        real = self.encode_positions(positions[mask])  # [M, 2] -> [M, out_dim] for the M real players
        encoded = real.new_zeros(*mask.shape, self.encode_positions.out_dim)  # real's dtype: bf16 under autocast
        encoded[mask] = real
        return encoded

    def forward(self, features: torch.Tensor, positions: torch.Tensor, positions_mask: torch.Tensor,
                frames_mask: torch.Tensor | None = None):
        b, t, _ = features.shape
        players = self.players_in(self.player_encodings(positions, positions_mask))  # [B, T, P, d']
        players = rearrange(players, "b t p c -> (b t) p c")
        mask = rearrange(positions_mask, "b t p -> (b t) p")
        if hasattr(self, "blocks"):
            if frames_mask is None:
                frames_mask = torch.ones(b, t, dtype=torch.bool, device=features.device)
            query = self.down(features)  # [B, T, d']
            for block in self.blocks:
                query = block(query, frames_mask, players, mask)
            fused = self.up(self.norm(query))  # [B, T, D]
        else:
            query = rearrange(self.down(features), "b t c -> (b t) 1 c")
            fused = rearrange(self.up(self.attend(players, query, mask)), "(b t) 1 c -> b t c", b=b, t=t)
        has_players = positions_mask.any(-1, keepdim=True)  # [B, T, 1]
        return features + fused * has_players
