"""Delta, DeLTA Lab's SoccerNet 2024 dense-captioning winner (gladuz/soccernet-caption-deltalab), in this harness.

A query decoder (BLIP-2-like): the local window's features are projected to the decoder width and given
sinusoidal positional encodings; 8 learnable queries (with sinusoidal encodings of their own index, as in DeLTA)
attend to them through a stack of transformer decoder layers (self-attention among queries, cross-attention to
the window, padded window positions masked).

Captioning: the 8 query outputs are the prefix of GPT-2 (star.models.decoder.CaptionDecoder without adapters,
fully trained). The caption text is ":" + caption + end-of-text, as DeLTA writes it; the ":" is a target like the
rest (predicted from the prefix, learnt at once), so decoding from the prefix alone reproduces DeLTA's
":"-prompted decoding, and the leading ":" is stripped from the output. Beam search comes from the decoder
(DeLTA itself samples top-k).

Spotting: the same query decoder, its outputs mean-pooled -> Linear -> softmax over background + 13 labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from star.models.decoder_config import DecoderConfig
from star.models.perceiver import sinusoidal_embedding

if TYPE_CHECKING:
    from star.data.batch import Batch



@dataclass
class DeltaConfig:
    spotting_window_s: int = 30     # local window (s) centred on the scored second / the anchor (DeLTA: T = 30)
    captioning_window_s: int = 30
    queries: int = 8                # learnable query tokens = prefix length
    width: int = 1024               # query decoder width (DeLTA: the GPT-2 width; medium 1024)
    layers: int = 4                 # transformer decoder layers
    heads: int = 8
    feedforward: int = 2048         # hidden width of each layer's feed-forward (PyTorch's default, as DeLTA)
    dropout: float = 0.1
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig(
        n_layer=24, n_embd=1024, n_head=16, n_positions=1024))  # GPT-2 medium (weights: decoder.pretrained)

    @classmethod
    def paper(cls) -> DeltaConfig:
        return cls()

    @classmethod
    def tiny(cls) -> DeltaConfig:
        # sized for the 2-core CPU budget: a 2 x 128 GPT-2 (the decoder's defaults) trained from scratch
        return cls(width=128, layers=1, heads=4, feedforward=256, decoder=DecoderConfig())


class QueryDecoder(nn.Module):
    """[B, T, D] window + [B, T] mask (True = real) -> [B, queries, width]."""

    def __init__(self, cfg: DeltaConfig, feature_dim: int):
        super().__init__()
        self.project = nn.Linear(feature_dim, cfg.width)
        self.queries = nn.Parameter(torch.randn(cfg.queries, cfg.width))
        layer = nn.TransformerDecoderLayer(cfg.width, cfg.heads, cfg.feedforward, cfg.dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, cfg.layers)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, _ = features.shape
        queries, width = self.queries.shape
        window = self.project(features) + sinusoidal_embedding(torch.arange(length, device=features.device), width)
        queries = self.queries + sinusoidal_embedding(torch.arange(queries, device=features.device), width)
        # a window with no real sample (never served in practice) attends to all of it rather than give NaN
        padding = ~mask & mask.any(dim=1, keepdim=True)
        return self.decoder(queries.expand(batch, -1, -1), window, memory_key_padding_mask=padding)


class DeltaSpotter(nn.Module):
    def __init__(self, cfg: DeltaConfig, feature_dim: int, n_classes: int):
        super().__init__()
        self.encode = QueryDecoder(cfg, feature_dim)
        self.classify = nn.Linear(cfg.width, n_classes)

    def forward(self, batch: Batch) -> torch.Tensor:
        """-> logits [B, 1 + n_labels], background first."""
        return self.classify(self.encode(batch.local, batch.local_mask).mean(dim=1))
