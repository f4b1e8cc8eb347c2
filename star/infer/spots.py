"""`star spotting-infer`: the spots of one half, by a sliding window and greedy non-maximum suppression.

    star spotting-infer --model results/spotting/star/pptimesformer/default/model.safetensors \\
        --features results/features/pptimesformer/<game>/1.h5 [--positions results/positions/classical/<game>/1.h5] \\
        --out results/spotting/star/pptimesformer/default/spots/<game>/1.json [--config CFG]

The spotter scores the window centred on every whole second of the half (stride 1 s): the confidence of an event
there is 1 - P(background), its label the most likely caption label. NMS then keeps the best second, removes every
second within `nms_window_s / 2` of it, and repeats while a confidence of at least `threshold` remains. A half
where no second reaches the threshold keeps its best one, so every half gets a caption.
The output JSON holds the spots and every second's confidence and label.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from star.data.games import Game
from star.data.soccernet import CAPTION_LABELS
from star.provenance import code_hash, record, write_text_atomic
from star.train.common import inputs_of, load_model, read_config
from star.train.datasets import CacheReader, Collate, Half, WindowDataset, feature_attrs
from star.train.loop import pick_device


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
               device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(confidence [S] = 1 - P(background), label index [S] into CAPTION_LABELS) of every second."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=Collate())
    confidence, label = [], []
    for batch in tqdm(loader, desc="spotting", unit="batch", mininterval=2.0):
        probs = model(batch.to(device)).float().softmax(-1)  # [B, 1 + n_labels]
        confidence.append(1 - probs[:, 0])
        label.append(probs[:, 1:].argmax(-1))
    return torch.cat(confidence).cpu().numpy(), torch.cat(label).cpu().numpy()


def spot_half(model: torch.nn.Module, content: dict, features: Path, positions: Path | None, section: dict,
              device: torch.device) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(spots, confidence [S], label index [S]) of one half: every second scored, then NMS."""
    length, fps, dim = feature_attrs(features)
    half = Half(Game("", "", ""), 0, features, positions, (), length, fps, dim)
    inputs = inputs_of(content, "spotting", features)
    reader = CacheReader(global_stride=getattr(content["model_cfg"], "global_stride", 1))
    confidence, label = score_half(model, SecondsDataset(half, inputs, reader), section["infer_batch_size"], device)
    kept = nms(confidence, section["nms_window_s"], section["threshold"])
    spots = [{"seconds": int(s), "label": CAPTION_LABELS[label[s]], "confidence": round(float(confidence[s]), 6)}
             for s in sorted(kept)]
    return spots, confidence, label


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="spotter written by `star spotting-train`")
    parser.add_argument("--features", type=Path, required=True, help="features cache of the half")
    parser.add_argument("--positions", type=Path, help="positions cache of the half (if the spotter reads them)")
    parser.add_argument("--out", type=Path, required=True, help="spots JSON to write")
    parser.add_argument("--config", help="configuration: inline JSON or a YAML file (spotting and model sections)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    cfg = read_config(args.config)
    section = cfg["spotting"]
    device = pick_device(cfg["model"]["device"])
    model, content = load_model(args.model, "spotting", device)
    spots, confidence, label = spot_half(model, content, args.features, args.positions, section, device)
    used = {"spotting": section, "model": cfg["model"]}
    out = {**record("spotting-infer", used, code_hash(__name__), sources=[args.model], method=content["method"],
                    variant=content["variant"], features=str(args.features)),
           "spots": spots, "confidence": [round(float(c), 6) for c in confidence],
           "label": [CAPTION_LABELS[i] for i in label]}
    write_text_atomic(args.out, json.dumps(out) + "\n")
    print(f"star spotting-infer: {len(spots)} spots over {len(confidence)} s -> {args.out}")
    return 0
