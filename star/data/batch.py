"""The batch: one dataclass, the contract between the datasets (star.data.datasets) and every model.

Shapes (B samples; T local samples = window seconds * fps; G global samples; P player slots; L tokens):

    local          float [B, T, D]     features of the local window centred on the anchor
    local_mask     bool  [B, T]        False where the window runs off the half
    global_        float [H, G, D]     the global features of each distinct half of the batch (standardised,
                                       every global_stride-th sample; float32 or float16), padded to the longest
    global_mask    bool  [H, G]
    global_times   long  [H, G]            sample index of each global row, when the dataset already selected the
                                       rows (STaR's Filter/Memory); None: row j is sample j * global_stride
    global_index   long  [B]           the row of global_ of each sample (None: row i is sample i, H = B)
    positions      float [B, T, P, 2]  player positions (pitch metres) at the local window's samples
    positions_mask bool  [B, T, P]
    positions_team long  [B, T, P]     0 left, 1 right (the side the team defends), -1 unknown; None unless the
                                       model reads team, role and ball (STaR's `sss_inputs: xy_team_role_ball`:
                                       then the last of the P slots is the ball, role BALL_ROLE)
    positions_role long  [B, T, P]     cache.ROLES index, BALL_ROLE for the ball; None likewise
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
    global_index: torch.Tensor | None = None
    global_times: torch.Tensor | None = None
    positions_team: torch.Tensor | None = None
    positions_role: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.local.shape[0]

    def _map(self, fn) -> Batch:
        return replace(self, **{f.name: None if (v := getattr(self, f.name)) is None else fn(v) for f in fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True) on CUDA runs."""
        return self._map(torch.Tensor.pin_memory)

    def halves(self) -> torch.Tensor:
        """The global_ row of each sample [B]."""
        if self.global_index is not None:
            return self.global_index
        return torch.arange(len(self), device=self.local.device)

    def select(self, index) -> Batch:
        """A sub-batch (rows `index`: a slice, a list or a tensor of indices); global_ is kept whole."""
        per_half = {"global_": self.global_, "global_mask": self.global_mask, "global_times": self.global_times}
        per_sample = replace(self, global_index=None, **dict.fromkeys(per_half))._map(lambda t: t[index])
        return replace(per_sample, global_index=self.halves()[index], **per_half)
