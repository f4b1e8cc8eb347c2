"""`star spotting-infer`: the spots of each half given, by a sliding window and each method's spot selection.

    star spotting-infer --model results/spotting/star/pptimesformer/default/model.safetensors \\
        --features results/features/pptimesformer/<game>/1.h5 ... \\
        [--positions results/positions/classical/<game>/1.h5 ...] \\
        --out results/spotting/star/pptimesformer/default/spots/<game>/1.json ... [--config CFG]

Features, positions and outputs name halves in the same order; the model is loaded once for all of them (the
workflow runs one job per model over the test split: a process and a model load per half cost more than a tiny
model's half), and each half's file is written as soon as it is scored.

The spotter scores the window centred on every whole second of the half (stride 1 s): a softmax over background +
the 13 caption labels. `select_spots` then turns these per-second probabilities into spots by one of three rules
(`spotting.selection`; null = the method's own, as its public code does it):

- `max_class` (STaR's and Delta's code): a second scores its largest non-background probability, labelled by that
  class; class-agnostic greedy NMS: the best second is kept and seconds [i - w/2, i + w/2) are suppressed (w =
  `nms_window_s` x fps samples), while a score of at least `threshold` remains. Nothing passes: no spot.
- `per_label` (SDVC, sn-caption): the same greedy NMS run separately on each label's probability, with
  `per_label_threshold`; spots of every label are kept (two labels may spot the same second).
- `background` (ours, the embedded world's default): a second scores 1 - P(background), labelled by its most
  likely caption label; greedy NMS removes every second within `nms_window_s / 2` of a kept one while a score of
  at least `threshold` remains, and a half where nothing passes keeps its best second, so every half gets a caption.

The output JSON holds the spots and every second's confidence (the rule's score) and most likely label.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from star import config as star_config
from star import registry
from star.data.datasets import Collate, WindowDataset
from star.data.halves import CacheReader, Half, feature_attrs
from star.data.games import Game
from star.data.soccernet import CAPTION_LABELS
from star.device import pick_device
from star.errors import InputError
from star.model_file import inputs_of, load_model
from star.provenance import method_code, record, write_text_atomic


def nms(scores: np.ndarray, window_s: float, threshold: float, fps: float = 1.0) -> list[int]:
    """Greedy NMS over per-sample scores (sample i at i / fps): indices of the kept peaks, best first.

    A kept sample removes every sample within window_s / 2 seconds of it; peaks below `threshold` are dropped,
    but the best sample is kept when none passes.
    """
    scores = np.asarray(scores, np.float64)
    if not len(scores):
        return []
    times = np.arange(len(scores)) / fps
    live = np.ones(len(scores), bool)
    kept = []
    while live.any():
        best = int(np.flatnonzero(live)[np.argmax(scores[live])])
        if scores[best] < threshold and kept:
            break
        kept.append(best)
        if scores[best] < threshold:
            break  # the best of a half where nothing passes
        live &= np.abs(times - times[best]) > window_s / 2
    return kept


SELECTIONS = registry.SELECTIONS




def selection_rule(section: dict, method: str) -> str:
    """The spot selection of `method` under the spotting config (null = the method's own)."""
    return section.get("selection") or registry.method(method).selection  # null: each method's own code's


def greedy_windows(scores: np.ndarray, window: float, threshold: float) -> list[int]:
    """Greedy NMS as sn-caption's and STaR's code do it: while the best remaining score is >= threshold, keep its
    sample i (the first on ties) and suppress samples [i - window/2, i + window/2) (bounds truncated to ints)."""
    scores = np.array(scores, np.float64)  # a copy: suppressed samples are set to -1
    kept = []
    while len(scores) and scores.max() >= threshold:
        best = int(np.argmax(scores))
        kept.append(best)
        scores[max(int(best - window / 2), 0):min(best + int(window / 2), len(scores))] = -1
    return kept


def select_spots(probs: np.ndarray, rule: str, window_s: float, threshold: float, per_label_threshold: float,
                 fps: float = 1.0) -> list[tuple[int, int, float]]:
    """Spots of one half from per-sample class probabilities [S, 1 + n_labels] (background first): a list of
    (sample index, label index into CAPTION_LABELS, confidence), in time order (then label)."""
    probs = np.asarray(probs, np.float64)
    labels = probs[:, 1:]  # [S, n_labels]
    if rule == "background":
        confidence = 1 - probs[:, 0]
        spots = [(i, int(labels[i].argmax()), confidence[i]) for i in nms(confidence, window_s, threshold, fps)]
    elif rule == "max_class":
        best = labels.max(1) if len(labels) else np.zeros(0)
        spots = [(i, int(labels[i].argmax()), best[i])
                 for i in greedy_windows(best, window_s * fps, threshold)]
    elif rule == "per_label":
        spots = [(i, k, labels[i, k]) for k in range(labels.shape[1])
                 for i in greedy_windows(labels[:, k], window_s * fps, per_label_threshold)]
    else:
        raise ValueError(f"unknown spot selection {rule!r} (expected one of {', '.join(SELECTIONS)})")
    return sorted((int(i), int(k), float(c)) for i, k, c in spots)


class SecondsDataset(WindowDataset):
    """The windows centred on every whole second of one half."""

    def __init__(self, half: Half, inputs, reader: CacheReader):
        super().__init__([half], inputs, reader)
        seconds = np.arange(int(half.length / half.fps))
        self.anchors = np.round(seconds * half.fps).astype(np.int64)
        self.half_index = np.zeros(len(seconds), np.int64)
        self.labels = np.zeros(len(seconds), np.int64)


@torch.no_grad()
def score_half(model: torch.nn.Module, dataset: SecondsDataset, batch_size: int,
               device: torch.device) -> np.ndarray:
    """Class probabilities [S, 1 + n_labels] (background first) of every second of the dataset's one half.
    Memory: the half's global features once, plus one batch of windows."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=Collate())
    probs = []
    per_half = getattr(model, "global_latents", None)  # STaR: its global stage, computed once for the half
    cached = None
    for batch in tqdm(loader, desc="spotting", unit="batch", mininterval=2.0):
        batch = batch.to(device)
        if per_half is not None:
            cached = per_half(batch) if cached is None else cached
            logits = model(batch, global_latents=cached)
        else:
            logits = model(batch)
        probs.append(logits.float().softmax(-1))  # [B, 1 + n_labels]
    return torch.cat(probs).cpu().numpy()


def spot_half(model: torch.nn.Module, content: dict, features: Path, positions: Path | None, section: dict,
              device: torch.device, cfg_model: dict | None = None) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(spots, confidence [S], label index [S]) of one half: every second scored, then the selection rule.
    `cfg_model`: the config's model section (the store's cache_mb and global_dtype; defaults when None)."""
    cfg_model = cfg_model or {"cache_mb": 1024, "global_dtype": "float32"}
    length, fps, dim = feature_attrs(features)
    half = Half(Game("", "", ""), 0, features, positions, (), length, fps, dim)
    inputs = inputs_of(content, "spotting", features)
    reader = CacheReader(cfg_model["cache_mb"], global_stride=getattr(content["model_cfg"], "global_stride", 1),
                         global_dtype=cfg_model["global_dtype"])
    probs = score_half(model, SecondsDataset(half, inputs, reader), section["infer_batch_size"], device)
    rule = selection_rule(section, content["method"])
    kept = select_spots(probs, rule, section["nms_window_s"], section["threshold"], section["per_label_threshold"])
    spots = [{"seconds": s, "label": CAPTION_LABELS[k], "confidence": round(c, 6)} for s, k, c in kept]
    confidence = 1 - probs[:, 0] if rule == "background" else probs[:, 1:].max(1, initial=0.0)
    return spots, confidence, probs[:, 1:].argmax(1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="spotter written by `star spotting-train`")
    parser.add_argument("--features", type=Path, nargs="+", required=True, help="features cache of each half")
    parser.add_argument("--positions", type=Path, nargs="+",
                        help="positions cache of each half, same order (if the spotter reads them)")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="spots JSON to write, one per half")
    parser.add_argument("--config", help="configuration: inline JSON or a YAML file (spotting and model sections)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    cfg = star_config.section("", args.config)
    positions = args.positions or [None] * len(args.features)
    for flag, given in (("--positions", positions), ("--out", args.out)):
        if len(given) != len(args.features):
            raise InputError(f"--features names {len(args.features)} halves but {flag} {len(given)}")
    torch.set_num_threads(args.threads)
    section = cfg["spotting"]
    device = pick_device(cfg["model"]["device"])
    model, content = load_model(args.model, "spotting", device)
    for features in args.features:  # every input checked before the first half is scored
        feature_attrs(features)
    used = {"spotting": section, "model": cfg["model"]}
    for features, pos, path in zip(args.features, positions, args.out, strict=True):
        spots, confidence, label = spot_half(model, content, features, pos, section, device, cfg["model"])
        out = {**record("spotting-infer", used, method_code(content["method"], __name__), sources=[args.model],
                        method=content["method"], variant=content["variant"], features=str(features),
                        selection=selection_rule(section, content["method"])),
               "spots": spots, "confidence": [round(float(c), 6) for c in confidence],
               "label": [CAPTION_LABELS[i] for i in label]}
        write_text_atomic(path, json.dumps(out) + "\n")
        print(f"star spotting-infer: {len(spots)} spots over {len(confidence)} s -> {path}")
    return 0
