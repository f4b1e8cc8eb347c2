"""What end-to-end ("dense") methods share: the batch they train on, the events they predict, and how the events of
overlapping clips become one half's predictions.

A dense method (PDVC, Vid2Seq) reads a clip of `clip_s` seconds of a half and predicts its events, each a segment
with a caption, in one model; nothing spots first. The contract with star.train.dense and star.infer.dense:

    Model(cfg, feature_dim, tokenizer);  model(batch: DenseBatch) -> scalar loss
    model.predict(features [T, D], mask [T] | None, fps, max_tokens) -> list[Event] (seconds from the clip's
        start; at least one event per clip is wise: a half with no prediction breaks the official evaluator)
    cfg.clip_s, cfg.train_stride_s, cfg.infer_stride_s, cfg.event_s, cfg.nms_window_s   (the clips and the merge)

Shapes (B clips; T feature samples = clip_s * fps; E events of one clip; L tokens):

    features   float [B, T, D]   standardised clip features (zero past the half's end)
    mask       bool  [B, T]      False past the half's end
    events     list of B ClipEvents:
        centre, start, end  float [E]   in feature samples from the clip's start (segments may run past the clip)
        label               long  [E]   index into the dataset's caption labels
        tokens              long  [E, L]  caption tokens ending with the tokenizer's end token, padded with pad_id
        token_mask          bool  [E, L]

SoccerNet annotations are points; a training segment is `event_s` seconds centred on the point, and a predicted
segment's centre is the point the evaluator scores.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass
class ClipEvents:
    centre: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor
    label: torch.Tensor
    tokens: torch.Tensor
    token_mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.centre)

    def to(self, device, non_blocking: bool = False) -> ClipEvents:
        return ClipEvents(*(getattr(self, f).to(device, non_blocking=non_blocking) for f in FIELDS))


FIELDS = ("centre", "start", "end", "label", "tokens", "token_mask")


@dataclass
class DenseBatch:
    features: torch.Tensor
    mask: torch.Tensor
    events: list[ClipEvents]

    def __len__(self) -> int:
        return self.features.shape[0]

    def to(self, device, non_blocking: bool = False) -> DenseBatch:
        return DenseBatch(self.features.to(device, non_blocking=non_blocking),
                          self.mask.to(device, non_blocking=non_blocking),
                          [e.to(device, non_blocking) for e in self.events])

    def pin_memory(self) -> DenseBatch:
        """Called by DataLoader(pin_memory=True) on CUDA runs."""
        return replace(self, features=self.features.pin_memory(), mask=self.mask.pin_memory())


@dataclass(frozen=True)
class Event:
    """One predicted event; times in seconds (from the clip's start in `predict`, from the half's after merging)."""
    centre_s: float
    start_s: float
    end_s: float
    caption: str
    confidence: float
    label: int | None = None   # index into the dataset's caption labels; None: the method predicts none

    def shifted(self, offset_s: float) -> Event:
        return replace(self, centre_s=self.centre_s + offset_s, start_s=self.start_s + offset_s,
                       end_s=self.end_s + offset_s)


def clip_starts(length: int, clip: int, stride: int) -> list[int]:
    """First sample of every clip of `clip` samples, every `stride`, covering a half of `length` samples (the last
    clip may run past its end; a half shorter than a clip is one clip)."""
    stride = max(1, stride)
    starts = list(range(0, max(1, length - clip + 1), stride))
    if starts[-1] + clip < length:
        starts.append(starts[-1] + stride)
    return starts


def merge_events(events: list[Event], window_s: float, length_s: float) -> list[Event]:
    """One half's events from those of its overlapping clips: greedy NMS on centres (the most confident kept
    first; it removes every event whose centre is within `window_s / 2` of its own), centres outside the half
    dropped; in time order. An event twice in two overlapping clips is kept once."""
    inside = [e for e in events if 0 <= e.centre_s < length_s]
    kept: list[Event] = []
    for event in sorted(inside, key=lambda e: (-e.confidence, e.centre_s)):
        if all(abs(event.centre_s - k.centre_s) > window_s / 2 for k in kept):
            kept.append(event)
    return sorted(kept, key=lambda e: (e.centre_s, -e.confidence))


def segment_samples(seconds: np.ndarray, event_s: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) in samples of the `event_s`-second segments centred on `seconds` (training targets)."""
    centre = np.asarray(seconds, np.float64) * fps
    return centre - event_s * fps / 2, centre + event_s * fps / 2


__all__ = ["ClipEvents", "DenseBatch", "Event", "clip_starts", "merge_events", "segment_samples"]
