"""Training of end-to-end ("dense") methods (PDVC, Vid2Seq): one model learns events and captions from clips of the
train split's halves; `star captioning-train` runs it for a method of kind `dense` (no spotter is trained).

A training sample is a clip of `clip_s` seconds of a half (model config), every `train_stride_s` seconds; its
targets are every annotation inside it, as an `event_s`-second segment centred on the annotation's second (a
SoccerNet annotation is a point), its label and its caption (star.models.dense). Clips are read from the same
HDF5 feature caches as the two-stage methods (standardised with the train split's statistics); positions are not
read. Training runs through star.train.loop.fit (seeded, resumable, early-stopped on the valid split's clips) with
the `captioning.train` settings overridden by `captioning.dense.train`, and writes the same trained-model file,
report and step log as `star captioning-train` does for a captioner.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from star import registry
from star.device import pick_device
from star.errors import InputError
from star.model_file import build_model
from star.models.dense import ClipEvents, DenseBatch, clip_starts
from star.train.common import (caption_tokenizer, feature_statistics, fingerprint, method_config, read_config,
                               source_stamps, train_valid_halves)
from star.data.halves import CacheReader, Half, Inputs
from star.train.loop import fit, seed_everything, setup_distributed
from star.train.stage import save_trained


class ClipDataset(torch.utils.data.Dataset):
    """Clips of `clip` samples every `stride` samples of each half, with the annotations inside each."""

    def __init__(self, halves: list[Half], inputs: Inputs, clip: int, stride: int, event_s: float,
                 classes: tuple[str, ...], reader: CacheReader | None = None):
        self.halves, self.inputs, self.clip, self.event_s, self.classes = halves, inputs, clip, event_s, classes
        self.reader = reader or CacheReader()
        self.items = [(h, start) for h, half in enumerate(halves) for start in clip_starts(half.length, clip, stride)]

    def __len__(self) -> int:
        return len(self.items)

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(len(self))

    def __getitem__(self, i: int) -> dict:
        h, start = self.items[i]
        half = self.halves[h]
        # reader.window centres on its anchor: the clip [start, start + clip) is centred on start + clip // 2
        features, mask = self.reader.window(half, start + self.clip // 2, self.clip, self.inputs)
        centres, labels, captions = [], [], []
        for a in half.annotations:
            centre = a.seconds * half.fps - start
            if 0 <= centre < self.clip:
                centres.append(centre)
                labels.append(self.classes.index(a.label))
                captions.append(a.anonymized)
        order = np.argsort(centres, kind="stable")
        return {"features": features, "mask": mask, "centre": np.asarray(centres, np.float32)[order],
                "label": np.asarray(labels, np.int64)[order], "captions": [captions[k] for k in order],
                "half_samples": self.event_s * half.fps / 2}


class DenseCollate:
    """Clips -> DenseBatch; captions become tokens (the tokenizer's `encode_batch`: at most max_tokens - 1 tokens,
    then its end token)."""

    def __init__(self, tokenizer, max_tokens: int):
        self.tokenizer, self.max_tokens = tokenizer, max_tokens

    def __call__(self, samples: list[dict]) -> DenseBatch:
        events = []
        for s in samples:
            centre = torch.from_numpy(s["centre"])
            if s["captions"]:
                tokens, token_mask = self.tokenizer.encode_batch(s["captions"], self.max_tokens)
            else:
                tokens, token_mask = torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, 1, dtype=torch.bool)
            events.append(ClipEvents(centre, centre - s["half_samples"], centre + s["half_samples"],
                                     torch.from_numpy(s["label"]), tokens, token_mask))
        return DenseBatch(torch.from_numpy(np.stack([s["features"] for s in samples])),
                          torch.from_numpy(np.stack([s["mask"] for s in samples])), events)


def dense_loss(model: torch.nn.Module, batch: DenseBatch) -> torch.Tensor:
    return model(batch)


def clip_samples(model_cfg, fps: float) -> tuple[int, int]:
    """(clip length, training stride) in feature samples at `fps`."""
    return max(1, round(model_cfg.clip_s * fps)), max(1, round(model_cfg.train_stride_s * fps))


def train_settings(cfg: dict) -> dict:
    """The `captioning.train` settings overridden by `captioning.dense.train` (a dense sample is a whole clip)."""
    return {**cfg["captioning"]["train"], **cfg["captioning"]["dense"]["train"]}


def train_dense(args: argparse.Namespace, code: str) -> int:
    """`star captioning-train` for a dense method: `code` is the stage's code hash."""
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    cfg = read_config(args.config)
    seed, train_cfg = cfg["seed"], train_settings(cfg)
    if train_cfg["accumulate"] > train_cfg["batch_size"]:
        raise InputError(f"captioning.dense.train.accumulate ({train_cfg['accumulate']}) must not exceed its "
                         f"batch_size ({train_cfg['batch_size']}): every micro-batch needs a clip")
    if args.variant != "default":
        raise InputError(f"variant {args.variant!r} is an ablation of STaR; {args.method} has only the default")
    dist = setup_distributed()
    device = pick_device(cfg["model"]["device"], dist.local_rank)
    classes = registry.classes(cfg["dataset"]["source"])
    model_cfg = method_config(cfg, args.method)
    if hasattr(model_cfg, "labels"):  # a label head over the dataset's caption labels
        model_cfg = dataclasses.replace(model_cfg, labels=len(classes))
    train, valid = train_valid_halves(args, cfg)
    fps, dim = train[0].fps, train[0].dim
    clip, stride = clip_samples(model_cfg, fps)
    inputs = Inputs(window=clip, with_global=False)
    if cfg["model"]["standardize"]:
        inputs.mean, inputs.std = feature_statistics(train)
    reader = CacheReader(cfg["model"]["cache_mb"])
    train_set = ClipDataset(train, inputs, clip, stride, model_cfg.event_s, classes, reader)
    valid_full = ClipDataset(valid, inputs, clip, stride, model_cfg.event_s, classes, reader)
    keep = np.random.default_rng([seed, 1 << 20]).permutation(len(valid_full))[: train_cfg["max_valid_samples"]]
    valid_set = torch.utils.data.Subset(valid_full, np.sort(keep).tolist())
    captions = [a.anonymized for half in train for a in half.annotations]
    if not captions:
        raise InputError("captioning: the train split holds no annotation")
    tokenizer = caption_tokenizer(args.method, model_cfg, captions, cfg)
    collate = DenseCollate(tokenizer, cfg["captioning"]["max_tokens"])

    seed_everything(seed)
    model = build_model("captioning", args.method, model_cfg, dim, tokenizer)
    used = {k: cfg[k] for k in ("seed", "model", "captioning")} | {"dataset": cfg["dataset"]}
    checkpoint = args.out.with_name(args.out.name + ".ckpt")
    curve = fit(model, dense_loss, train_set, valid_set, collate, train_cfg, seed=seed, checkpoint=checkpoint,
                device=device, dist=dist, desc=f"captioning {args.method} (dense)",
                fingerprint=fingerprint("dense", args.method, args.variant, used, code, source_stamps(train + valid)),
                log_path=args.log or args.out.with_name("train_log.csv"))
    if not dist.main:
        return 0
    return save_trained(args, model, stage="captioning", label=f"captioning-train {args.method}", used=used,
                        code=code, sources=[h.features for h in train + valid], model_cfg=model_cfg, halves=train,
                        inputs=inputs, tokenizer=tokenizer, curve=curve, checkpoint=checkpoint, started=started,
                        device=device, dist=dist, extra={"clip": clip, "stride": stride,
                                                         "train_samples": len(train_set),
                                                         "valid_samples": len(valid_set)})
