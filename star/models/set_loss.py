"""The set loss of DETR-style event detectors (PDVC): predictions matched one-to-one to the ground-truth events by
the Hungarian algorithm (scipy's linear_sum_assignment) over a weighted cost of classification (focal), segment L1
and generalised IoU; unmatched queries learn "no event".

Segments are (centre, length) normalised to the clip, [n, 2]; `segments_to_bounds` turns them into (start, end).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment


def segments_to_bounds(segments: torch.Tensor) -> torch.Tensor:
    """(centre, length) [..., 2] -> (start, end) [..., 2]."""
    centre, length = segments.unbind(-1)
    return torch.stack([centre - length / 2, centre + length / 2], dim=-1)


def generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU of every pair of 1-D segments (start, end): a [n, 2], b [m, 2] -> [n, m]; 1 for equal segments, down to
    -1 for far-apart ones."""
    start_a, end_a = a[:, None, 0], a[:, None, 1]
    start_b, end_b = b[None, :, 0], b[None, :, 1]
    inter = (torch.minimum(end_a, end_b) - torch.maximum(start_a, start_b)).clamp(min=0)
    union = (end_a - start_a) + (end_b - start_b) - inter
    hull = torch.maximum(end_a, end_b) - torch.minimum(start_a, start_b)
    return inter / union.clamp(min=1e-6) - (hull - union) / hull.clamp(min=1e-6)


def focal_cost(logits: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Cost of calling each query [n] an event, as Deformable DETR's matcher: focal loss of the positive minus
    that of the negative."""
    prob = logits.sigmoid()
    negative = (1 - alpha) * prob ** gamma * -(1 - prob + 1e-8).log()
    positive = alpha * (1 - prob) ** gamma * -(prob + 1e-8).log()
    return positive - negative


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al.) of every logit against its 0/1 target, summed."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.sum()


@dataclass(frozen=True)
class MatchCosts:
    classification: float = 2.0
    l1: float = 0.0
    giou: float = 4.0
    alpha: float = 0.25
    gamma: float = 2.0


@torch.no_grad()
def hungarian_match(logits: torch.Tensor, segments: torch.Tensor, targets: torch.Tensor,
                    costs: MatchCosts) -> tuple[torch.Tensor, torch.Tensor]:
    """One clip: query logits [q], predicted segments [q, 2], target segments [e, 2] (centre, length) -> (query
    indices, target indices), each [min(q, e)], the assignment of least total cost."""
    if not len(targets):
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    cost = (costs.classification * focal_cost(logits.float(), costs.alpha, costs.gamma)[:, None]
            + costs.l1 * torch.cdist(segments.float(), targets.float(), p=1)
            - costs.giou * generalized_iou(segments_to_bounds(segments.float()), segments_to_bounds(targets.float())))
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)


__all__ = ["MatchCosts", "focal_cost", "generalized_iou", "hungarian_match", "segments_to_bounds",
           "sigmoid_focal_loss"]
