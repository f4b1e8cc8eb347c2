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
What a player token encodes (`inputs`):
- `xy` (the paper): the position alone.
- `xy_team_role_ball`: the position plus the person's team side (left/right: which goal the team defends;
  unknown) and role (player, goalkeeper, referee, other, ball), one-hot beside the hash grid's features at the
  MLP's input (so the MLP can read a position differently per team and role), with the ball as one more token.
  The ball's team is the team of the nearest person of a team within `POSSESSION_M` (unknown if none): who has
  it. The ball is a key like everyone, and its encoding is also added to the frame's query (and, in the
  one-attention design, to the attention's output): one per frame, it would otherwise be diluted among ~30
  people. The commentary's side and zone words are relative to the acting team's attack direction, which
  positions alone cannot tell; a real extractor (sn-gamestate) gives the team sides, roles and the ball.
The perceiver attention's keys are the players and the query itself (Eq. 4), so a frame without players stays
finite. W_up starts at zero, so an untrained SSS is the identity; a frame with no detected player is left exactly
as it was (it has no spatial information to add).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from star.data.cache import BALL_ROLE
from star.models.hashgrid import PositionEncoder

from star.models.perceiver import PerceiverAttention, feed_forward

SSS_INPUTS = ("xy", "xy_team_role_ball")
ATTRIBUTE_DIM = 3 + BALL_ROLE + 1   # one-hot team (unknown, left, right) and role (cache.ROLES, then the ball)
POSSESSION_M = 3.0                  # m: the nearest person of a team this close to the ball has it


def ball_team(positions: torch.Tensor, mask: torch.Tensor, team: torch.Tensor, role: torch.Tensor) -> torch.Tensor:
    """team [..., P] with each ball slot's team set to the team of the nearest real person of a team within
    POSSESSION_M metres of it (-1 if none). positions [..., P, 2], mask, team, role [..., P]."""
    is_ball = (role == BALL_ROLE) & mask
    if not bool(is_ball.any()):
        return team
    teamed = mask & (team >= 0) & ~is_ball                                            # [..., P]
    distance = torch.cdist(positions.float(), positions.float())                     # [..., P, P]
    distance = distance.masked_fill(~teamed[..., None, :], float("inf"))
    nearest, index = distance.min(-1)                                                 # [..., P]
    holder = torch.gather(team, -1, index).masked_fill(nearest > POSSESSION_M, -1)  # [..., P]
    return torch.where(is_ball, holder, team)


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
    """features [B, T, D], positions [B, T, P, 2] metres, positions_mask [B, T, P] (+ frames_mask [B, T]; with
    inputs `xy_team_role_ball` also team and role [B, T, P], long) -> features [B, T, D]."""

    def __init__(self, feature_dim: int, low_dim: int = 64, heads: int = 4, dim_head: int = 16,
                 position_encoder: PositionEncoder | None = None, blocks: int = 0, inputs: str = "xy"):
        super().__init__()
        if inputs not in SSS_INPUTS:
            raise ValueError(f"sss_inputs must be one of {SSS_INPUTS}, not {inputs!r}")
        self.inputs = inputs
        self.encode_positions = position_encoder or PositionEncoder()
        if inputs == "xy_team_role_ball" and self.encode_positions.extra_dim != ATTRIBUTE_DIM:
            raise ValueError(f"sss_inputs xy_team_role_ball needs a position encoder with extra_dim={ATTRIBUTE_DIM}")
        self.down = nn.Linear(feature_dim, low_dim, bias=False)
        self.players_in = nn.Linear(self.encode_positions.out_dim, low_dim, bias=False)
        if blocks:
            self.blocks = nn.ModuleList(SSSBlock(low_dim, dim_head, heads) for _ in range(blocks))
            self.norm = nn.LayerNorm(low_dim)
        else:
            self.attend = PerceiverAttention(low_dim, dim_head, heads)
        self.up = nn.Linear(low_dim, feature_dim, bias=False)
        nn.init.zeros_(self.up.weight)

    def player_encodings(self, positions: torch.Tensor, mask: torch.Tensor, team: torch.Tensor | None = None,
                         role: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, P, 2] metres + [B, T, P] (+ team, role [B, T, P]) -> [B, T, P, out_dim], zero on empty slots;
        only real players encoded."""
        extra = None
        if self.inputs == "xy_team_role_ball":
            if team is None or role is None:
                raise ValueError("this SSS reads team, role and the ball (sss_inputs: xy_team_role_ball), but the "
                                 "batch carries positions only")
            team = ball_team(positions, mask, team, role)
            extra = torch.cat([F.one_hot(team[mask].clamp(-1, 1) + 1, 3),
                               F.one_hot(role[mask].clamp(0, BALL_ROLE), BALL_ROLE + 1)], dim=-1)  # [M, 8]
        real = self.encode_positions(positions[mask], extra)  # [M, 2] -> [M, out_dim] for the M real players
        encoded = real.new_zeros(*mask.shape, self.encode_positions.out_dim)  # real's dtype: bf16 under autocast
        encoded[mask] = real
        return encoded

    def forward(self, features: torch.Tensor, positions: torch.Tensor, positions_mask: torch.Tensor,
                frames_mask: torch.Tensor | None = None, team: torch.Tensor | None = None,
                role: torch.Tensor | None = None):
        b, t, _ = features.shape
        players = self.players_in(self.player_encodings(positions, positions_mask, team, role))  # [B, T, P, d']
        # the frame's ball (xy_team_role_ball): one quantity per frame, not one of many people, so besides being a
        # key it also enters the frame's query directly (undiluted by the attention over everyone)
        ball = None
        if self.inputs == "xy_team_role_ball":
            ball = (players * ((role == BALL_ROLE) & positions_mask)[..., None]).sum(2)  # [B, T, d']
        players = rearrange(players, "b t p c -> (b t) p c")
        mask = rearrange(positions_mask, "b t p -> (b t) p")
        query = self.down(features) if ball is None else self.down(features) + ball  # [B, T, d']
        if hasattr(self, "blocks"):
            if frames_mask is None:
                frames_mask = torch.ones(b, t, dtype=torch.bool, device=features.device)
            for block in self.blocks:
                query = block(query, frames_mask, players, mask)
            fused = self.up(self.norm(query))  # [B, T, D]
        else:
            attended = self.attend(players, rearrange(query, "b t c -> (b t) 1 c"), mask)
            attended = rearrange(attended, "(b t) 1 c -> b t c", b=b, t=t)
            fused = self.up(attended if ball is None else attended + ball)
        has_players = positions_mask.any(-1, keepdim=True)  # [B, T, 1]
        return features + fused * has_players
