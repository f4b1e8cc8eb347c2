"""`star encoder-finetune`: train the PP-TimesFormer preset from scratch on the train split's event labels.

No pretrained weights exist in this project, so, as Baidu fine-tuned theirs on SoccerNet, the encoder learns
to tell the event of each second: a second within `event_radius_s` of an annotation takes its caption label,
else background. The classifier is PaddleVideo's `head.fc` over background + the caption labels. Clips are the
ones extraction sees (star.features.extract) and are drawn class-balanced; AdamW with a cosine schedule.

All train halves are decoded once into memory at the model's size (tiny: 12 KB a frame, 60 MB for 16 halves of
300 s at 1 fps); deterministic on CPU given the seed and thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

from star.config import section
from star.data.cache import open_cache
from star.data.soccernet import CLASSES, load_labels, sample_labels
from star.errors import InputError
from star.features.clips import clip_frame_indices, preprocess
from star.features.pptimesformer import clip_window

READ_CHUNK = 256  # frames read from a cache at a time


def paired(first: list[str], second: list[str], names: str) -> list[tuple[str, str]]:
    if len(first) != len(second):
        raise InputError(f"{names}: got {len(first)} and {len(second)} files; they must pair up one to one")
    return list(zip(first, second, strict=True))


def load_half(frames_path: str, labels_path: str, size: int, frames: int, window_s: float, radius_s: float,
              alignment: str = "centre"):
    """(frames [N, S, S, 3] uint8, clip frame indices [n_clips, T], clip labels [n_clips]) of one half."""
    labels = load_labels(labels_path)
    with open_cache(frames_path, "frames") as h5:
        half, fps = int(h5.attrs["half"]), float(h5.attrs["fps"])
        n = len(h5["times"])
        if not n:
            raise InputError(f"{frames_path}: frames cache holds no frames")
        decoded = np.concatenate([preprocess(h5["frames"][i:i + READ_CHUNK], size)
                                  for i in range(0, n, READ_CHUNK)])
        index = clip_frame_indices(h5["times"][:], fps, frames, window_s, alignment)
    clip_labels = sample_labels(labels.half(half), np.arange(len(index), dtype=np.float64), radius_s)
    return decoded, index, clip_labels


def load_training_set(pairs, size: int, frames: int, window_s: float, radius_s: float, alignment: str = "centre"):
    """All halves concatenated: frames [sum N, S, S, 3], indices [clips, T] into them, labels [clips]."""
    all_frames, all_index, all_labels, offset = [], [], [], 0
    for frames_path, labels_path in tqdm(pairs, desc="load halves", unit="half"):
        decoded, index, labels = load_half(frames_path, labels_path, size, frames, window_s, radius_s, alignment)
        all_frames.append(decoded)
        all_index.append(index + offset)
        all_labels.append(labels)
        offset += len(decoded)
    return np.concatenate(all_frames), np.concatenate(all_index), np.concatenate(all_labels)


def balanced_probabilities(labels: np.ndarray) -> np.ndarray:
    """Sampling probability per clip so that every class present is drawn equally often."""
    counts = np.bincount(labels)
    weights = 1.0 / counts[labels]
    return weights / weights.sum()


def train(model, frames: np.ndarray, index: np.ndarray, labels: np.ndarray, cfg: dict, seed: int) -> dict:
    """Fine-tune `model` in place; return the loss curve and the accuracy of the last tenth of the steps."""
    import paddle
    import paddle.nn.functional as F

    from star.features.clips import to_clips

    rng = np.random.default_rng(seed)
    probabilities = balanced_probabilities(labels)
    schedule = paddle.optimizer.lr.CosineAnnealingDecay(learning_rate=cfg["lr"], T_max=cfg["steps"])
    optimizer = paddle.optimizer.AdamW(learning_rate=schedule, parameters=model.parameters(),
                                       weight_decay=cfg["weight_decay"])
    model.train()
    losses, correct = [], []
    for _ in tqdm(range(cfg["steps"]), desc="finetune", unit="step"):
        pick = rng.choice(len(labels), size=cfg["batch_size"], p=probabilities)
        logits = model(paddle.to_tensor(to_clips(frames, index[pick])))
        target = paddle.to_tensor(labels[pick])
        loss = F.cross_entropy(logits, target)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        schedule.step()
        losses.append(float(loss))
        correct.append(float((logits.argmax(axis=1).numpy() == labels[pick]).mean()))
    model.eval()
    tail = max(1, cfg["steps"] // 10)
    return {"loss": losses, "loss_first": float(np.mean(losses[:tail])), "loss_last": float(np.mean(losses[-tail:])),
            "train_accuracy": float(np.mean(correct[-tail:]))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", nargs="+", required=True, help="frames caches of the train halves")
    parser.add_argument("--labels", nargs="+", required=True,
                        help="Labels-caption.json of each frames cache, in the same order (a game's file repeats)")
    parser.add_argument("--out", required=True, help=".pdparams to write")
    parser.add_argument("--report", required=True, help="JSON report to write (loss curve, accuracy, time)")
    parser.add_argument("--config", help="features.pptimesformer section: inline JSON or a YAML file")
    parser.add_argument("--seed", type=int, default=0, help="seed (the config's top-level seed)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="CPU threads")


def run(args: argparse.Namespace) -> int:
    from star.features.timesformer import build_config, build_model, save_weights, setup_paddle
    from star.provenance import code_hash, record, sha256_file, write_text_atomic

    cfg = section("features.pptimesformer", args.config)
    tune = cfg["finetune"]
    pairs = paired(args.frames, args.labels, "--frames/--labels")
    setup_paddle(args.threads)
    started = time.perf_counter()
    model_cfg = build_config(cfg["preset"], cfg["frames"], num_classes=len(CLASSES))
    window_s, alignment = clip_window(cfg)
    frames, index, labels = load_training_set(pairs, model_cfg.image_size, model_cfg.frames, window_s,
                                              tune["event_radius_s"], alignment)
    load_s = time.perf_counter() - started
    model = build_model(model_cfg, args.seed)
    curve = train(model, frames, index, labels, tune, args.seed)
    save_weights(model, args.out)
    report = {
        **record("encoder-finetune", cfg, code_hash(__name__), sources=[p for pair in pairs for p in pair],
                 seed=args.seed, threads=args.threads),
        "model": asdict(model_cfg),
        "classes": list(CLASSES),
        "class_counts": {CLASSES[c]: int(n) for c, n in enumerate(np.bincount(labels, minlength=len(CLASSES)))
                         if n},
        "clips": len(labels),
        **curve,
        "load_s": round(load_s, 2),
        "time_s": round(time.perf_counter() - started, 2),
        "weights": str(args.out),
        "weights_sha256": sha256_file(args.out),
    }
    write_text_atomic(args.report, json.dumps(report, indent=1) + "\n")
    print(f"star encoder-finetune: wrote {args.out}; loss {curve['loss_first']:.3f} -> {curve['loss_last']:.3f}, "
          f"train accuracy {curve['train_accuracy']:.2f}, {report['time_s']:.0f} s")
    return 0
