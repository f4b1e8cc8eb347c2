"""A toy two-stage method registered from outside the package (STAR_PLUGINS=tests.toy_method): one module plus one
registration is all a method needs. Spotter: the window's mean feature -> Linear. Captioner: a GRU over word
embeddings started from the window's mean feature, greedy decoding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from star.registry import Method, register_method


@dataclass
class ToyConfig:
    spotting_window_s: int = 5      # spotting window (s) centred on the scored second
    captioning_window_s: int = 9    # captioning window (s) centred on the anchor
    hidden: int = 16                # GRU width
    min_word_freq: int = 1          # words seen fewer times are <unk>
    max_tokens: int = 12            # generated words at most

    @classmethod
    def tiny(cls) -> ToyConfig:
        return cls()

    @classmethod
    def paper(cls) -> ToyConfig:
        return cls(hidden=64)


def window_mean(batch) -> torch.Tensor:
    """[B, D]: the mean feature over the window's real samples."""
    mask = batch.local_mask[..., None].float()
    return (batch.local * mask).sum(1) / mask.sum(1).clamp(min=1)


class ToySpotter(nn.Module):
    def __init__(self, cfg: ToyConfig, feature_dim: int, n_classes: int):
        super().__init__()
        self.classify = nn.Linear(feature_dim, n_classes)

    def forward(self, batch) -> torch.Tensor:
        return self.classify(window_mean(batch))


class ToyCaptioner(nn.Module):
    def __init__(self, cfg: ToyConfig, feature_dim: int, vocab):
        super().__init__()
        self.cfg, self.vocab = cfg, vocab
        self.start = nn.Linear(feature_dim, cfg.hidden)
        self.embed = nn.Embedding(vocab.vocab_size, cfg.hidden, padding_idx=vocab.pad_id)
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, batch_first=True)
        self.to_words = nn.Linear(cfg.hidden, vocab.vocab_size)

    def forward(self, batch) -> torch.Tensor:
        tokens, mask = batch.tokens, batch.token_mask
        bos = torch.full_like(tokens[:, :1], self.vocab.bos_id)
        state = torch.tanh(self.start(window_mean(batch)))[None]     # [1, B, hidden]
        hidden, _ = self.gru(self.embed(torch.cat([bos, tokens[:, :-1]], 1)), state)
        return F.cross_entropy(self.to_words(hidden)[mask], tokens[mask])

    @torch.no_grad()
    def generate(self, batch, beam_size: int = 1, max_tokens: int | None = None) -> list[str]:
        state = torch.tanh(self.start(window_mean(batch)))[None]
        token = torch.full((len(batch), 1), self.vocab.bos_id, device=batch.local.device)
        steps = []
        for _ in range(max_tokens or self.cfg.max_tokens):
            hidden, state = self.gru(self.embed(token), state)
            token = self.to_words(hidden).argmax(-1)
            steps.append(token)
        return [self.vocab.decode(ids) for ids in torch.cat(steps, 1).tolist()]


register_method(Method("toy", "Toy", "two_stage", "tests.toy_method:ToyConfig", spotter="tests.toy_method:ToySpotter",
                       captioner="tests.toy_method:ToyCaptioner", tokenizer="words", selection="max_class"))
