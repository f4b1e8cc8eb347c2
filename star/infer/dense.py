"""Inference of end-to-end ("dense") methods: the events of each half from the model alone, as the official
predictions file (`star captioning-infer` runs it for a method of kind `dense`; no spots are read).

Each half's features are standardised as in training and cut into clips of `clip_s` seconds every
`infer_stride_s` (overlapping); the model predicts each clip's events (`predict`, times from the clip's start),
which are shifted to the half and merged (star.models.dense.merge_events: greedy NMS on centres over
`nms_window_s`). A prediction's time is its segment's centre, truncated to the second as SoccerNet writes it; its
label is the model's (`comments` when the method predicts none). A half where the model finds nothing keeps its most
confident event, so the evaluator sees every half (the model predicts at least one event per clip).
"""

from __future__ import annotations

import numpy as np
import torch

from star.data.cache import check_features, open_cache
from star import registry
from star.models.dense import Event, clip_starts, merge_events


def half_features(path, content: dict) -> tuple[np.ndarray, float]:
    """(standardised features [N, D] float32, fps) of one half's cache, which must suit the model."""
    with open_cache(path, "features") as h5:
        fps, dim = float(h5.attrs["fps"]), int(h5.attrs["dim"])
        check_features(path, fps, dim, (content["fps"], content["feature_dim"]),
                       f"the {content['method']} model was trained on")
        rows = h5["features"][:].astype(np.float32)
    norm = content["norm"]
    if norm is not None:
        rows -= norm[0].numpy()
        rows /= norm[1].numpy()
    return rows, fps


@torch.no_grad()
def half_events(model, model_cfg, features: np.ndarray, fps: float, max_tokens: int,
                device: torch.device) -> list[Event]:
    """The merged events of one half (seconds from the half's start)."""
    clip = max(1, round(model_cfg.clip_s * fps))
    stride = max(1, round(model_cfg.infer_stride_s * fps))
    length = len(features)
    found = []
    for start in clip_starts(length, clip, stride):
        window = np.zeros((clip, features.shape[1]), np.float32)
        part = features[start:start + clip]
        window[: len(part)] = part
        mask = torch.zeros(clip, dtype=torch.bool)
        mask[: len(part)] = True
        events = model.predict(torch.from_numpy(window).to(device), mask.to(device), fps, max_tokens)
        found += [e.shifted(start / fps) for e in events]
    merged = merge_events(found, model_cfg.nms_window_s, length / fps)
    if not merged and found:  # every centre fell past the half's end: keep the best, at the last second
        best = max(found, key=lambda e: e.confidence)
        merged = [best.shifted(min(length / fps - 1, max(0.0, best.centre_s)) - best.centre_s)]
    return merged


def dense_predictions(model, content: dict, halves: list[tuple[int, str]], max_tokens: int,
                      device: torch.device, dataset: str = "synthetic") -> list[dict]:
    """Official-format predictions (half, seconds, label, confidence, comment) of (half number, features cache)
    pairs; captions of at most `max_tokens` tokens; labels named by `dataset`'s caption labels."""
    classes = registry.classes(dataset)
    out = []
    for number, path in halves:
        features, fps = half_features(path, content)
        for e in half_events(model, content["model_cfg"], features, fps, max_tokens, device):
            out.append({"half": number, "seconds": int(e.centre_s), "confidence": round(e.confidence, 6),
                        "label": "comments" if e.label is None else classes[e.label], "comment": e.caption})
    return out
