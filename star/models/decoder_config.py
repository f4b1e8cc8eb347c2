"""The GPT-2 caption decoder's configuration, apart from the decoder itself: the method configs embed it, and a
spotter (which never builds a decoder) imports its method's config without importing transformers or the decoder
(so an edit to star.models.decoder does not change a spotter's code hash)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DecoderConfig:
    n_layer: int = 2               # GPT-2 blocks (GPT-2 medium: 24)
    n_embd: int = 128              # GPT-2 width (medium: 1024)
    n_head: int = 4                # attention heads (medium: 16)
    n_positions: int = 128         # longest prefix + caption, in tokens (GPT-2: 1024)
    dropout: float = 0.1           # GPT-2's embedding / attention / residual dropout (random init only)
    pretrained: str | None = None  # GPT-2 directory or cached hub id; its sizes replace the four above
    adapter_dim: int = 64          # width of each adapter's attention (lightweight: far below the GPT-2 width)
    adapter_heads: int = 4
    length_penalty: float = 1.0    # beam score = sum of log-probs / length ** length_penalty
