"""SDVC, the SoccerNet-Caption baseline (Mkhallati et al. 2023, SoccerNet/sn-caption), in this harness.

Spotting: the window's features -> Linear(D -> 512) -> NetVLAD (k clusters) -> dropout -> Linear -> logits.
The original scores one "caption here" class with a sigmoid and BCE; the harness asks every spotter for a softmax
over background + the 13 caption labels (the same interface as Delta and STaR), and the class is taken from it.

Captioning: NetVLAD encoding of a 45 s window centred on the anchor -> MLP -> the initial hidden and cell states of
a multi-layer LSTM over word embeddings; word vocabulary from the train captions (star.models.vocab); trained by
teacher forcing with token cross-entropy; greedy decoding, as in the original (`generate` ignores beam_size).

One departure, in the `tiny` preset only (`batch_norm`): a BatchNorm over the NetVLAD descriptor before the heads.
sn-caption trains until its validation loss stops improving (many epochs); within this harness's few hundred
steps, the unit-norm descriptor (entries ~1/sqrt(K * 512), 97% of its energy shared by all windows at
initialisation) barely moves default-initialised heads. Measured on the default synthetic world (300 steps):
spotting valid loss 1.24 -> 1.06 (class prior 1.65), and the captioner went from ignoring its window (valid loss
with the windows shuffled across samples: +0.002) to reading it (+0.08). The `paper` preset keeps the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from star.models.netvlad import NetVLAD
from star.models.vocab import WordVocab

if TYPE_CHECKING:
    from star.data.batch import Batch



@dataclass
class SDVCConfig:
    spotting_window_s: int = 15     # spotting window (s) centred on the scored second (sn-caption: 15)
    captioning_window_s: int = 45   # captioning window (s) centred on the anchor (sn-caption: 45)
    feature_proj: int = 512         # Linear(D -> feature_proj) before NetVLAD
    vlad_clusters: int = 64         # NetVLAD k
    dropout: float = 0.4            # before the spotting classifier and the LSTM's initial state
    lstm_hidden: int = 512
    word_emb: int = 256
    lstm_layers: int = 4
    min_word_freq: int = 5          # train-caption words rarer than this become <unk>
    max_tokens: int = 70            # greedy decoding length limit
    batch_norm: bool = False        # BatchNorm1d on the NetVLAD descriptor (not in sn-caption; see the module doc)

    @classmethod
    def paper(cls) -> SDVCConfig:
        return cls()

    @classmethod
    def tiny(cls) -> SDVCConfig:
        # sized for the synthetic world on a 2-core CPU (a few hundred captions, ~300 words)
        return cls(feature_proj=64, vlad_clusters=8, lstm_hidden=128, word_emb=64, lstm_layers=1, min_word_freq=2,
                   batch_norm=True)


class DescriptorNorm(nn.BatchNorm1d):
    """BatchNorm1d that uses its running statistics for a training batch of one (which has no batch variance)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class SDVCEncoder(nn.Module):
    """[B, T, D] window + [B, T] mask -> [B, K * feature_proj] NetVLAD descriptor."""

    def __init__(self, cfg: SDVCConfig, feature_dim: int):
        super().__init__()
        self.project = nn.Linear(feature_dim, cfg.feature_proj)
        self.pool = NetVLAD(cfg.feature_proj, cfg.vlad_clusters)
        self.norm = DescriptorNorm(self.pool.out_dim) if cfg.batch_norm else nn.Identity()
        self.out_dim = self.pool.out_dim

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.norm(self.pool(self.project(features), mask))


class SDVCSpotter(nn.Module):
    def __init__(self, cfg: SDVCConfig, feature_dim: int, n_classes: int):
        super().__init__()
        self.encode = SDVCEncoder(cfg, feature_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classify = nn.Linear(self.encode.out_dim, n_classes)

    def forward(self, batch: Batch) -> torch.Tensor:
        """-> logits [B, 1 + n_labels], background first."""
        return self.classify(self.dropout(self.encode(batch.local, batch.local_mask)))


class SDVCCaptioner(nn.Module):
    def __init__(self, cfg: SDVCConfig, feature_dim: int, vocab: WordVocab):
        super().__init__()
        self.cfg, self.vocab = cfg, vocab
        self.encode = SDVCEncoder(cfg, feature_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.initial_state = nn.Sequential(
            nn.Linear(self.encode.out_dim, cfg.lstm_hidden),
            nn.ReLU(),
            nn.Linear(cfg.lstm_hidden, 2 * cfg.lstm_layers * cfg.lstm_hidden),
        )
        self.embed = nn.Embedding(vocab.vocab_size, cfg.word_emb, padding_idx=vocab.pad_id)
        self.lstm = nn.LSTM(cfg.word_emb, cfg.lstm_hidden, cfg.lstm_layers, batch_first=True,
                            dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0)
        self.to_words = nn.Linear(cfg.lstm_hidden, vocab.vocab_size)
        # never generated: structural tokens, and <unk> (a placeholder word only costs the metrics)
        banned = torch.zeros(vocab.vocab_size, dtype=torch.bool)
        banned[[vocab.pad_id, vocab.bos_id, vocab.unk_id]] = True
        self.register_buffer("banned", banned, persistent=False)

    def lstm_state(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The window's encoding as the LSTM's (h0, c0), each [layers, B, hidden]."""
        state = self.initial_state(self.dropout(self.encode(batch.local, batch.local_mask)))
        state = state.view(-1, 2, self.cfg.lstm_layers, self.cfg.lstm_hidden)  # [B, 2, layers, hidden]
        h0, c0 = state.permute(1, 2, 0, 3).contiguous()  # each [layers, B, hidden]
        return torch.tanh(h0), c0  # h lives in (-1, 1) in a running LSTM

    def forward(self, batch: Batch) -> torch.Tensor:
        """Teacher forcing: <bos> + tokens[:-1] in, tokens (words + <end>) out; mean cross-entropy on real tokens."""
        tokens, mask = batch.tokens, batch.token_mask
        bos = torch.full_like(tokens[:, :1], self.vocab.bos_id)
        hidden, _ = self.lstm(self.embed(torch.cat([bos, tokens[:, :-1]], dim=1)), self.lstm_state(batch))
        logits = self.to_words(hidden)  # [B, L, V]
        return F.cross_entropy(logits[mask], tokens[mask])

    @torch.no_grad()
    def generate(self, batch: Batch, beam_size: int = 1, max_tokens: int | None = None) -> list[str]:
        """Greedy decoding (SDVC's own; beam_size is ignored) until <end> or max_tokens words."""
        state = self.lstm_state(batch)
        token = torch.full((batch.local.shape[0], 1), self.vocab.bos_id, device=batch.local.device)
        finished = torch.zeros(token.shape[0], dtype=torch.bool, device=token.device)
        steps = []
        for _ in range(max_tokens or self.cfg.max_tokens):
            hidden, state = self.lstm(self.embed(token), state)
            token = self.to_words(hidden).masked_fill(self.banned, float("-inf")).argmax(dim=-1)  # [B, 1]
            steps.append(token)
            finished |= token[:, 0] == self.vocab.end_id
            if finished.all():
                break
        return [self.vocab.decode(ids) for ids in torch.cat(steps, dim=1).tolist()]
