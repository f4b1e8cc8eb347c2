"""Delta's captioner (the configuration and the query decoder: star.models.delta). Its own module so that the
spotter does not import the GPT-2 decoder."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from star.models.decoder import CaptionDecoder
from star.models.delta import DeltaConfig, QueryDecoder

if TYPE_CHECKING:
    from star.models.tokenizer import Tokenizer
    from star.data.batch import Batch

PROMPT = ":"


class DeltaCaptioner(nn.Module):
    def __init__(self, cfg: DeltaConfig, feature_dim: int, tokenizer: Tokenizer):
        super().__init__()
        self.tokenizer = tokenizer
        self.encode = QueryDecoder(cfg, feature_dim)
        self.decoder = CaptionDecoder(cfg.decoder, tokenizer.vocab_size, tokenizer.end_id, prefix_dim=cfg.width)
        self.register_buffer("prompt", torch.tensor(tokenizer.encode(PROMPT)), persistent=False)

    def forward(self, batch: Batch) -> torch.Tensor:
        """Token cross-entropy of ":" + caption + end-of-text after the 8-token prefix."""
        batch_size = batch.tokens.shape[0]
        prompt = self.prompt.expand(batch_size, -1)
        tokens = torch.cat([prompt, batch.tokens], dim=1)  # [B, len(prompt) + L]
        token_mask = torch.cat([torch.ones_like(prompt, dtype=torch.bool), batch.token_mask], dim=1)
        return self.decoder(self.encode(batch.local, batch.local_mask), tokens, token_mask)

    @torch.no_grad()
    def generate(self, batch: Batch, beam_size: int = 4, max_tokens: int = 70) -> list[str]:
        """Beam search from the prefix; the leading ":" is dropped. Call in eval mode."""
        prefix = self.encode(batch.local, batch.local_mask)
        prompt = self.prompt.tolist()
        captions = self.decoder.generate(prefix, beam_size=beam_size, max_tokens=max_tokens + len(prompt))
        return [self.tokenizer.decode(ids[len(prompt):] if ids[: len(prompt)] == prompt else ids).strip()
                for ids in captions]
