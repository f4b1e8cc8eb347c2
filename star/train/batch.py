"""The batch: one dataclass, the contract between the datasets (star.train.datasets) and every model.

Shapes (B samples; T local samples = window seconds * fps; G global samples; P player slots; L tokens):

    local          float [B, T, D]     features of the local window centred on the anchor
    local_mask     bool  [B, T]        False where the window runs off the half
    global_        float [B, G, D]     the whole half's features, padded to the longest half in the batch
    global_mask    bool  [B, G]
    positions      float [B, T, P, 2]  player positions (pitch metres) at the local window's samples
    positions_mask bool  [B, T, P]
    anchor         long  [B]           anchor sample index in its half
    label          long  [B]           spotting class: 0 background, 1.. = CAPTION_LABELS index + 1 (spotting only)
    tokens         long  [B, L]        caption tokens, padded with the tokenizer's pad id (captioning training only)
    token_mask     bool  [B, L]        True on real tokens

Spotting batches carry no tokens and captioning-inference batches no tokens or labels: those fields are None.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class Batch:
    local: torch.Tensor
    local_mask: torch.Tensor
    global_: torch.Tensor
    global_mask: torch.Tensor
    positions: torch.Tensor
    positions_mask: torch.Tensor
    anchor: torch.Tensor
    label: torch.Tensor | None = None
    tokens: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.local.shape[0]

    def _map(self, fn) -> Batch:
        return replace(self, **{f.name: None if (v := getattr(self, f.name)) is None else fn(v) for f in fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True) on CUDA runs."""
        return self._map(torch.Tensor.pin_memory)

    def select(self, index) -> Batch:
        """A sub-batch (rows `index`: a slice, a list or a tensor of indices)."""
        return self._map(lambda t: t[index])
