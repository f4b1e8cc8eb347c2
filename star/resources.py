"""Memory each workflow job needs (`resources: mem_mb` of every rule), from the config and its inputs' sizes.

Snakemake starts a job only while the sum of the running jobs' `mem_mb` stays within the global `mem_mb`;
workflow/rules/common.smk sets that to this machine's memory on local runs (unless `--resources mem_mb=N` says
otherwise), so `snakemake --cores 8` never runs more jobs at once than memory holds. On SLURM the same figure is
each job's `--mem`. A retry (`attempt` 2) asks for twice as much.

The figures are upper bounds of peak resident memory: a process base (Python, numpy, h5py; torch and models for
the model rules) plus what the job holds at once, estimated from the sizes of its inputs (a half's features are
read whole; a model file is loaded once) and from the config (batches, `model.cache_mb`, presets). Where the
inputs do not exist yet (a dry run), the estimate assumes SoccerNet-length halves of 8576-d features.

Also what a local run may take of the machine (its CPUs, its memory) and `cancel_replanning`, which lets a
finished Snakemake run exit at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

MB = 2**20
PYTHON_MB = 400            # python + numpy + h5py + the star package
TORCH_MB = 900             # + torch and its kernels
JVM_MB = 2300              # METEOR's JVM (-Xmx2G) beside its Python
SOCCERNET_HALF_MB = 2800 * 8576 * 4 / MB   # a 46-min half of Baidu features, float32 (a dry run's guess)
SOCCERNET_DIM = 8576
PRESET_MODEL_MB = {"tiny": 200, "paper": 8000}  # weights, gradients and AdamW moments (paper: GPT-2 medium)
ENCODER_MB = {"tiny": 2500, "paper": 16000}     # PP-TimesFormer fine-tuning / extraction, batch included
CLIP_MB = TORCH_MB + 3000                       # CLIP extraction: the tower (ViT-L/14 ~1.2 GB) and a batch


def _paths(value) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [Path(v) for v in value]


def _size_mb(paths: Iterable[Path], missing_mb: float) -> list[float]:
    return [p.stat().st_size / MB if p.is_file() else missing_mb for p in paths]


def _feature_dim(paths: list[Path]) -> int:
    """The features' dimension (from the first existing cache's attributes), else SoccerNet's."""
    import h5py

    for path in paths:
        if path.is_file():
            try:
                with h5py.File(path, "r") as h5:
                    return int(h5.attrs["dim"])
            except (OSError, KeyError, ValueError):
                break
    return SOCCERNET_DIM


def mem_mb(rule: str, config: Mapping, inputs: Mapping[str, object], attempt: int = 1) -> int:
    """MiB a job of `rule` needs at peak; `inputs` maps the rule's named inputs to a path or a list of paths."""
    files = {name: _paths(value) for name, value in inputs.items()}
    features = files.get("features", [])
    half_mb = _size_mb(features, SOCCERNET_HALF_MB)
    model_mb = sum(_size_mb(files.get("model", []), PRESET_MODEL_MB[config["model"]["preset"]]))
    all_mb = sum(_size_mb([p for ps in files.values() for p in ps], 0.0))
    preset = config["model"]["preset"]
    row_mb = _feature_dim(features) * 4 / MB  # one feature sample, float32
    window = 30 * config["decode"]["fps"] if config["dataset"]["source"] == "synthetic" else 30  # samples

    if rule in ("spotting_infer", "captioning_infer", "captioning_infer_both"):  # both: one model, one game at a time
        section = config["spotting" if rule == "spotting_infer" else "captioning"]
        batch = section["infer_batch_size"]
        # a job runs over the test split but holds one half (spotting) or one game's halves (captioning) at a
        # time: each once (the store: float32 plus the raw read being standardised), a batch of windows (the
        # windows, their stack and the projections' input), the model (loaded and its file's bytes)
        held = 1 if rule == "spotting_infer" else len(config["dataset"]["halves"])
        need = (TORCH_MB + 2 * model_mb + 2 * held * max(half_mb, default=SOCCERNET_HALF_MB)
                + 3 * batch * window * row_mb)
        if rule != "spotting_infer":
            need += PRESET_MODEL_MB[preset] / 4 * section["beam_size"] / 4  # the decoder's beams and caches
    elif rule in ("spotting_train", "captioning_train"):
        train = config["spotting" if rule == "spotting_train" else "captioning"]["train"]
        batch, workers = train["batch_size"], train["workers"]
        halves = min(train["halves_per_batch"] or batch, len(features) or batch)  # distinct halves a batch
        longest = max(half_mb, default=SOCCERNET_HALF_MB)
        # the model and its optimiser, the per-process stores, a batch's distinct halves (padded, as float32,
        # the projection's input and gradient) and windows, the next batch being read
        need = (TORCH_MB + PRESET_MODEL_MB[preset] + config["model"]["cache_mb"] * (1 + workers)
                + 3 * min(halves, batch) * longest + 8 * batch * window * row_mb + 2 * longest)
    elif rule in ("encoder_finetune", "features_extract"):  # clips are read batch by batch
        need = ENCODER_MB[config["features"]["pptimesformer"]["preset"]]
        if rule == "features_extract" and "clip" in config["features"]["encoders"]:
            need = max(need, CLIP_MB)
    elif rule == "features_import":  # one half's .npy, loaded, checked and written
        need = PYTHON_MB + 3 * sum(_size_mb(files.get("npy", []), SOCCERNET_HALF_MB))
    elif rule == "features_probe":  # one half at a time, plus the sampled training rows
        longest = max(_size_mb(files.get("train", []) + files.get("test", []), 0.0), default=SOCCERNET_HALF_MB)
        need = PYTHON_MB + 1500 + 2 * longest + config["features"]["probe"]["max_train_samples"] * row_mb * 2
    elif rule in ("video_decode", "positions_localize", "positions_evaluate"):
        need = PYTHON_MB + 2500  # streamed frame by frame
    elif rule == "world_synthesize":
        need = 2500  # renders one frame at a time; the match plan and commentary are small
    elif rule in ("evaluate_captions", "evaluate_captioning_subtask", "evaluate_both"):
        need = PYTHON_MB + JVM_MB + 2 * all_mb
    else:  # dataset_manifest, world_splits, split_games, make_table, diagnostics_build: small files
        need = PYTHON_MB + 2 * all_mb
    return int(need * attempt + 0.5)


def machine_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or taskset's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cancel_replanning() -> int:
    """Cancel Snakemake's pending re-planning timers; for its `onsuccess`/`onerror`, when the run is over. Why: its
    scheduler re-plans on `threading.Timer`s, which are not daemon threads, so the last one would keep the finished
    process alive for up to the rate limit's timespan (10 s with profiles/default). Returns how many it cancelled."""
    timers = [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)
              and getattr(thread.function, "__module__", "").startswith("snakemake.scheduling")]
    for timer in timers:
        timer.cancel()
    return len(timers)


def machine_mb() -> int:
    """This machine's physical memory in MiB (the global `mem_mb` of a local Snakemake run)."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MB)
