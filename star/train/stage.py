"""The train stages (`star spotting-train`, `star captioning-train`): one method (and ablation variant) on the
train split's caches, early-stopped on the valid split, written as one trained-model file plus a JSON report.

    star spotting-train --method star --manifest results/dataset/games.tsv --labels-root results/world \\
        --features results/features/pptimesformer --positions results/positions/classical \\
        --out results/spotting/star/pptimesformer/default/model.safetensors --report .../train.json [--config CFG]

A resumable checkpoint lives beside the output (`model.safetensors.ckpt`) while training runs; it is removed once the
model is written. A CSV of every step (losses, lr, gradient norm, samples/s) is written as training goes (`--log`,
default `train_log.csv` beside the output; see star.train.log). Under torchrun every process trains
(star.train.loop) and rank 0 writes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from star.device import pick_device
from star.errors import InputError
from star.model_file import build_model, model_inputs, save_model
from star.provenance import record, stage_code, write_text_atomic
from star.train.common import (caption_tokenizer, feature_statistics, fingerprint, method_config, n_classes,
                               read_config, source_stamps, train_valid_halves)
from star.data.datasets import CaptioningDataset, Collate, HalfGroups, SpottingDataset, block_halves
from star.data.halves import CacheReader, keep_freed_memory
from star.train.loop import captioning_loss, fit, seed_everything, setup_distributed, spotting_loss


def datasets(stage: str, cfg: dict, train, valid, inputs, reader, seed: int):
    """(train set, valid subset, the train split's captions)."""
    section = cfg[stage]
    if stage == "spotting":
        train_set, valid_set = (SpottingDataset(halves, inputs, section["radius_s"],
                                                section["negatives_per_positive"], reader) for halves in (train, valid))
        keep = valid_set.epoch_order(np.random.default_rng([seed, 1 << 20]))  # balanced, fixed
    else:
        train_set = CaptioningDataset(train, inputs, reader=reader, jitter_s=section["anchor_jitter_s"])
        valid_set = CaptioningDataset(valid, inputs, reader=reader)
        keep = np.random.default_rng([seed, 1 << 20]).permutation(len(valid_set))
    if not len(train_set) or not len(valid_set):
        raise InputError(f"{stage}: the {'train' if not len(train_set) else 'valid'} split holds no sample")
    valid_subset = torch.utils.data.Subset(valid_set, np.sort(keep[: section["train"]["max_valid_samples"]]).tolist())
    return train_set, valid_subset, [a.anonymized for half in train for a in half.annotations]


def train_stage(args: argparse.Namespace, stage: str) -> int:
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    cfg = read_config(args.config)
    seed, train_cfg = cfg["seed"], cfg[stage]["train"]
    if train_cfg["accumulate"] > train_cfg["batch_size"]:
        raise InputError(f"{stage}.train.accumulate ({train_cfg['accumulate']}) must not exceed "
                         f"{stage}.train.batch_size ({train_cfg['batch_size']}): every micro-batch needs a sample")
    dist = setup_distributed()
    device = pick_device(cfg["model"]["device"], dist.local_rank)
    model_cfg = method_config(cfg, args.method, args.variant)
    train, valid = train_valid_halves(args, cfg)
    fps, dim = train[0].fps, train[0].dim
    inputs = model_inputs(model_cfg, fps, stage)
    if cfg["model"]["standardize"]:
        inputs.mean, inputs.std = feature_statistics(train)
    keep_freed_memory()  # the store's evicted halves' pages are reused by the next ones
    reader = CacheReader(cfg["model"]["cache_mb"], global_stride=getattr(model_cfg, "global_stride", 1),
                         global_dtype=cfg["model"]["global_dtype"])
    train_set, valid_set, captions = datasets(stage, cfg, train, valid, inputs, reader, seed)
    if train_cfg["halves_per_batch"] and inputs.with_global:  # grouping pays only where a half is read whole
        train_set.groups = HalfGroups(train_cfg["halves_per_batch"], block_halves(reader, train))
    tokenizer = caption_tokenizer(args.method, model_cfg, captions, cfg) if stage == "captioning" else None
    collate = Collate(tokenizer, cfg["captioning"]["max_tokens"])

    seed_everything(seed)
    classes = n_classes(cfg) if stage == "spotting" else None
    model = build_model(stage, args.method, model_cfg, dim, tokenizer, classes)
    code = stage_code(stage, args.method)
    used = {k: cfg[k] for k in ("seed", "model", stage)} | {"dataset": cfg["dataset"]}
    checkpoint = args.out.with_name(args.out.name + ".ckpt")
    curve = fit(model, spotting_loss if stage == "spotting" else captioning_loss, train_set, valid_set, collate,
                train_cfg, seed=seed, checkpoint=checkpoint, device=device, dist=dist,
                fingerprint=fingerprint(stage, args.method, args.variant, used, code, source_stamps(train + valid)),
                desc=f"{stage} {args.method} {args.variant}",
                log_path=args.log or args.out.with_name("train_log.csv"))
    if not dist.main:
        return 0
    sources = [h.features for h in train + valid] + [h.positions for h in train + valid if h.positions]
    return save_trained(args, model, stage=stage, label=f"{stage}-train {args.method} {args.variant}", used=used,
                        code=code, sources=sources, model_cfg=model_cfg, halves=train, inputs=inputs,
                        tokenizer=tokenizer, curve=curve, checkpoint=checkpoint, started=started, device=device,
                        dist=dist, extra={"window": inputs.window, "train_samples": len(train_set),
                                          "valid_samples": len(valid_set)}, classes=classes)


def save_trained(args: argparse.Namespace, model: torch.nn.Module, *, stage: str, label: str, used: dict,
                 code: str, sources: list, model_cfg, halves: list, inputs, tokenizer, curve: dict, checkpoint,
                 started: float, device, dist, extra: dict, classes: int | None = None) -> int:
    """After training (rank 0): the trained-model file with its provenance, the resumable checkpoint removed, the
    JSON report (`extra` first), one summary line. Shared by the two-stage and the dense train commands."""
    provenance = record(label.split()[0], used, code, sources=[], method=args.method, variant=args.variant,
                        inputs=[str(p) for p in sources])
    save_model(args.out, model, stage=stage, method=args.method, variant=args.variant,
               preset=used["model"]["preset"], model_cfg=model_cfg, feature_dim=halves[0].dim, fps=halves[0].fps,
               encoder=str(args.features.name), norm=None if inputs.mean is None else (inputs.mean, inputs.std),
               tokenizer=tokenizer, provenance=provenance, training=curve, classes=classes)
    checkpoint.unlink(missing_ok=True)
    report = {**provenance, **extra, "parameters": sum(p.numel() for p in model.parameters()),
              "device": str(device), "threads": args.threads, "processes": dist.world, **curve,
              "time_s": round(time.perf_counter() - started, 1)}
    if args.report:
        write_text_atomic(args.report, json.dumps(report, indent=1) + "\n")
    print(f"star {label}: {curve['steps']} steps, best valid loss {curve['best_valid_loss']:.3f} at step "
          f"{curve['best_step']}, {report['time_s']:.0f} s -> {args.out}")
    return 0
