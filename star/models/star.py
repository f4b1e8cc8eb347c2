"""STaR (§3): the configuration, what both stages share, and the spotter (the captioner: star.models.star_captioner).

Spotter: [SSS-enriched] local window + the half's global features -> GCC latents -> mean over latents -> LayerNorm
-> Linear -> logits over background + the 13 caption labels.

Captioner: local window -> SSS (positions) -> L'; global features -> Filter/Memory -> G'; PCC latents Z' over G'
then L'; GPT-2 reads Z' as its prefix, and each block carries two gated cross-attention adapters (the paper's "two
lightweight adapter modules", star.models.decoder): one over the SSS-enriched local tokens (spatial detail of the
frames), one over the latents (temporal context). Token cross-entropy end to end; beam search at inference.

Ablations: `use_global` off drops the global stage of both capturers (the latents read the local window only);
`use_positions` off drops the SSS (Table 3's "without SSS" and Table 6's "P"); `blur` is Table 3's feature
blurring K, applied by the dataset.

Input features come standardised per channel by the dataset (`model.standardize`: the train split's statistics,
saved with the model), the global ones once per half (star.data.halves). The global stage runs once per
distinct half of a batch (`Batch.global_index`), and a caller scoring many windows of one half can compute it once
(`global_latents`) and pass it to `forward`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from star.models.context import GlobalContextCapturer
from star.models.decoder_config import DecoderConfig
from star.models.hashgrid import PositionEncoder
from star.models.sss import ATTRIBUTE_DIM, SpatialSemanticSynthesizer

if TYPE_CHECKING:
    from star.data.batch import Batch



@dataclass
class STaRConfig:
    spotting_window_s: int = 30         # local window (s) of both stages (the authors' settings: 30)
    captioning_window_s: int = 30
    dim: int = 768                      # latent width d: features are projected to it (paper §4.1)
    num_latents: int = 8                # (paper §4.1)
    global_depth: int = 2               # perceiver layers of the global stage (paper §4.1: two)
    depth: int = 6                      # perceiver layers of the local stage (the authors' code: 6)
    heads: int = 16
    dim_head: int = 96
    ff_mult: int = 4
    dropout: float = 0.0                # the authors' code: none
    # SSS: hash grid (tiny-cuda-nn HashGrid) -> bias-free MLP -> position_dim per player
    max_players: int = 32
    position_dim: int = 24
    grid_levels: int = 16
    grid_features: int = 2              # features per level
    grid_log2_table: int = 19
    grid_base_resolution: int = 16
    grid_per_level_scale: float = 1.447
    mlp_width: int = 64
    mlp_layers: int = 2
    grid_backend: str = "auto"          # auto: tinycudann on CUDA when installed, else pure PyTorch
    sss_dim: int = 24                   # d' of the SSS attention (W_down: D -> d'; the authors' code: 24)
    sss_heads: int = 16
    sss_dim_head: int = 96
    sss_blocks: int = 2                 # [self-attention, cross-attention to the players, FF] blocks (authors: 2);
                                        # 0: one perceiver cross-attention per frame (ours, the tiny preset's)
    sss_inputs: str = "xy"              # xy: positions only (the paper); xy_team_role_ball: + each person's team
                                        # side and role, and the ball as one more slot (what sn-gamestate gives)
    # PCC
    filter_alpha: float = 0.2           # Filter keeps every round(1 / alpha)-th global frame
    memory_tau: float = 0.9             # Memory re-inserts frames whose best cosine to the kept ones is below
    global_stride: int = 1              # the dataset's global features are every global_stride-th sample
    # ablations (Tables 3 and 6)
    use_global: bool = True
    use_positions: bool = True
    blur: int = 1                       # feature blurring K (1: none), applied by the dataset
    # caption decoder: GPT-2 (tiny: 2 x 128 from scratch; paper: medium, weights from decoder.pretrained)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    @classmethod
    def paper(cls, **overrides) -> STaRConfig:
        """The paper's settings, completed by the authors' code (docs/paper-preset.md): d=768, 8 latents, 2 global
        + 6 local perceiver layers of 16 heads x 96, no dropout, SSS d'=24 in two blocks, GPT-2 medium with two
        adapters per block (random unless `decoder.pretrained` names a local model directory)."""
        decoder = DecoderConfig(n_layer=24, n_embd=1024, n_head=16, n_positions=1024, adapter_dim=128,
                                adapter_heads=8)
        return cls(**{"decoder": decoder, **overrides})

    @classmethod
    def tiny(cls, **overrides) -> STaRConfig:
        """Sized for the synthetic world on a 2-core CPU (a training step of 32 samples well under a second)."""
        # 8 grid levels reach 16 * 1.447^7 = 212 vertices across the pitch (~0.5 m): fine enough for its players
        sizes = dict(dim=128, global_depth=1, depth=1, heads=4, dim_head=32, dropout=0.1, grid_levels=8,
                     grid_log2_table=14, sss_dim=32, sss_heads=4, sss_dim_head=16, sss_blocks=0)
        return cls(**{**sizes, **overrides})


def position_encoder(cfg: STaRConfig) -> PositionEncoder:
    return PositionEncoder(cfg.position_dim, cfg.grid_levels, cfg.grid_features, cfg.grid_log2_table,
                           cfg.grid_base_resolution, cfg.grid_per_level_scale, cfg.mlp_width, cfg.mlp_layers,
                           cfg.grid_backend, extra_dim=ATTRIBUTE_DIM if cfg.sss_inputs == "xy_team_role_ball" else 0)


class STaRBase(nn.Module):
    """What both stages share: the optional SSS and the global stage."""

    def __init__(self, cfg: STaRConfig, feature_dim: int):
        super().__init__()
        self.cfg = cfg
        self.sss = (SpatialSemanticSynthesizer(feature_dim, cfg.sss_dim, cfg.sss_heads, cfg.sss_dim_head,
                                               position_encoder(cfg), cfg.sss_blocks, cfg.sss_inputs)
                    if cfg.use_positions else None)

    def capturer_args(self) -> dict:
        cfg = self.cfg
        return dict(num_latents=cfg.num_latents, depth=cfg.depth, dim_head=cfg.dim_head, heads=cfg.heads,
                    ff_mult=cfg.ff_mult, dropout=cfg.dropout, use_global=cfg.use_global,
                    global_stride=cfg.global_stride, global_depth=cfg.global_depth)

    def local_features(self, batch: Batch) -> torch.Tensor:
        """The window's features, enriched by the SSS when positions are used: [B, T, D]."""
        if self.sss is None:
            return batch.local
        return self.sss(batch.local, batch.positions, batch.positions_mask & batch.local_mask[..., None],
                        batch.local_mask, batch.positions_team, batch.positions_role)

    def global_latents(self, batch: Batch) -> torch.Tensor:
        """The capturer's latents after the global stage, one row per distinct half of the batch: [H, R, dim]."""
        return self.context.encode_global(batch.global_, batch.global_mask, batch.global_times)

    def latents(self, batch: Batch, local: torch.Tensor, global_latents: torch.Tensor | None) -> torch.Tensor:
        """[B, R, dim]: the global stage (once per distinct half, unless given), then the local window."""
        if global_latents is None:
            global_latents = self.global_latents(batch)
        return self.context.encode_local(local, batch.local_mask, batch.anchor, global_latents[batch.halves()])


class STaRSpotter(STaRBase):
    def __init__(self, cfg: STaRConfig, feature_dim: int, n_classes: int):
        super().__init__(cfg, feature_dim)
        self.context = GlobalContextCapturer(feature_dim, cfg.dim, **self.capturer_args())
        self.head = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Dropout(cfg.dropout), nn.Linear(cfg.dim, n_classes))

    def forward(self, batch: Batch, global_latents: torch.Tensor | None = None) -> torch.Tensor:
        """-> logits [B, 1 + n_labels], background first."""
        latents = self.latents(batch, self.local_features(batch), global_latents)  # [B, R, dim]
        return self.head(latents.mean(1))
