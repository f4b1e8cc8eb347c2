"""STaR's captioner (§3; the configuration and the shared stages: star.models.star). Its own module so that the
spotter does not import the GPT-2 decoder."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from star.models.context import PositionContextCapturer
from star.models.decoder import CaptionDecoder
from star.models.perceiver import sinusoidal_embedding
from star.models.star import STaRBase, STaRConfig

if TYPE_CHECKING:
    from star.models.tokenizer import Tokenizer
    from star.data.batch import Batch


class STaRCaptioner(STaRBase):
    def __init__(self, cfg: STaRConfig, feature_dim: int, tokenizer: Tokenizer):
        super().__init__(cfg, feature_dim)
        self.tokenizer = tokenizer
        self.context = PositionContextCapturer(feature_dim, cfg.dim, cfg.filter_alpha, cfg.memory_tau,
                                               **self.capturer_args())
        # adapter streams: 0 = the (SSS-enriched) local tokens, 1 = the PCC latents
        self.decoder = CaptionDecoder(cfg.decoder, tokenizer.vocab_size, tokenizer.end_id, prefix_dim=cfg.dim,
                                      context_dims=(cfg.dim, cfg.dim))

    def encode(self, batch: Batch):
        """-> prefix [B, R, dim], adapter contexts ([B, T, dim], [B, R, dim]) and their masks."""
        local = self.local_features(batch)  # [B, T, D]
        latents = self.latents(batch, local, None)
        t = local.shape[1]
        offsets = torch.arange(t, device=local.device) - t // 2  # sample offsets from the anchor
        tokens = self.context.project(local) + sinusoidal_embedding(offsets, self.cfg.dim)  # [B, T, dim]
        return latents, (tokens, latents), (batch.local_mask, None)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Mean token cross-entropy of the batch's captions."""
        prefix, contexts, masks = self.encode(batch)
        return self.decoder(prefix, batch.tokens, batch.token_mask, contexts, masks)

    @torch.no_grad()
    def generate(self, batch: Batch, beam_size: int = 4, max_tokens: int = 100) -> list[str]:
        """Beam search -> one caption per sample (call in eval mode); max_tokens as the paper's 100."""
        prefix, contexts, masks = self.encode(batch)
        ids = self.decoder.generate(prefix, contexts, masks, beam_size, max_tokens)
        return [self.tokenizer.decode(row) for row in ids]
