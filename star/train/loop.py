"""The training loop every model goes through: seeded, resumable, early-stopped, on CPU, CUDA or several GPUs.

- Determinism: python, numpy and torch are seeded from the config seed, torch runs deterministic algorithms where
  it has them, and the data order is a pure function of (seed, step) (`step_batches`), so a run is repeatable
  for a given device and thread count.
- Checkpoints: every `checkpoint_every` steps the model, optimizer, scheduler, step, early-stopping state and
  every RNG state are saved atomically to `checkpoint` (in types `torch.load(weights_only=True)` admits, so a
  planted checkpoint cannot run code); a run that finds a checkpoint with the same fingerprint
  (config, code, data) resumes from it and ends with the weights an uninterrupted run would have. A checkpoint
  of another fingerprint is ignored and overwritten.
- Early stopping: the validation loss is measured every `eval_every` steps; the best weights are kept, and
  training stops after `patience` evaluations without improvement. The model ends with the best weights.
- Multi-GPU: run the same command under torchrun, e.g.
      torchrun --nproc_per_node 4 -m star captioning-train ...
  Each process trains a DistributedDataParallel replica on its own CUDA device (gloo on CPU), takes its share of
  every step's samples (`batch_size` per process: the effective batch is batch_size x processes) and rank 0 alone
  writes checkpoints and outputs.
- Logs: with `log_path`, a CSV row per step (star.train.log: losses, lr, gradient norm, samples/s; TensorBoard too
  when installed); each validation loss is printed when computed.
- Mixed precision and accumulation: `precision` bf16 runs the forward passes under bf16 autocast (`auto`: on CUDA
  when the GPU supports it); `accumulate` k splits each step's batch into k micro-batches whose gradients add up
  to the whole batch's (same samples, same order), so a large batch fits a small GPU.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from star.data.batch import Batch
from star.provenance import atomic_path
from star.train.log import TrainLog


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the process group torchrun describes (WORLD_SIZE > 1); a plain run is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    dist = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend, rank=dist.rank, world_size=world)
    return dist


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and ask torch for deterministic kernels."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS; read at CUDA start
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # torch.use_deterministic_algorithms(True, warn_only=True) without its import of torch._inductor (~1 CPU-s a
    # process) for a flag only torch.compile reads: nothing here compiles
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def rng_state() -> dict:
    """Every RNG state in plain types and tensors, which `torch.load(weights_only=True)` reads back."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                     cached], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def step_batches(dataset, batch_size: int, seed: int, start: int = 0, dist: Dist = Dist()) -> Iterator[list[int]]:
    """Sample indices of every step from `start` on, for this process.

    Epoch e is `dataset.epoch_batches(rng(seed, e), batch_size x processes)` (its `epoch_order` cut into steps,
    the rest dropped, or grouped by half: star.data.datasets.HalfGroups); process r takes the r-th share of each
    step. The order depends only on (seed, step): a resumed run sees the batches the interrupted one would have
    seen.
    """
    if len(dataset) == 0:
        raise ValueError("the training set is empty")
    step, epoch, per_step = 0, 0, batch_size * dist.world
    while True:
        rng = np.random.default_rng([seed, epoch])
        if hasattr(dataset, "epoch_batches"):
            chunks = dataset.epoch_batches(rng, per_step)
        else:
            order = dataset.epoch_order(rng)
            chunks = [order[b * per_step:(b + 1) * per_step] for b in range(max(1, len(order) // per_step))]
        for chunk in chunks[max(0, start - step):]:
            yield chunk[dist.rank * batch_size:(dist.rank + 1) * batch_size].tolist()
        step, epoch = step + len(chunks), epoch + 1


def micro_batches(batches: Iterator[list[int]], k: int) -> Iterator[list[int]]:
    """Each step's indices as k consecutive chunks (as equal as they can be): k micro-batches per step."""
    for indices in batches:
        for chunk in np.array_split(np.asarray(indices), k):
            yield chunk.tolist()


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where asked for (`auto`: on a CUDA device that supports it), else None (float32)."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return None


def spotting_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(model(batch), batch.label)


def captioning_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return model(batch)


def warmup_cosine(warmup: int, total: int, floor: float = 0.1) -> Callable[[int], float]:
    """Learning-rate factor: linear warmup over `warmup` steps, then cosine decay to `floor` at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def epoch_cosine(steps_per_epoch: int, epochs: int) -> Callable[[int], float]:
    """Learning-rate factor held through each epoch, cosine-decayed over epochs (epoch e of E: (1 + cos(pi e/E))/2),
    as a CosineAnnealingLR(T_max=E) stepped once per epoch."""
    def factor(step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * (step // steps_per_epoch) / epochs))
    return factor


def schedule(train_set, cfg: dict, seed: int, dist: Dist = Dist()) -> tuple[int, int, Callable[[int], float]]:
    """(total steps, steps per epoch, learning-rate factor) of a train section: `epochs` (when set) or `steps`
    long; an epoch is the steps `step_batches` makes of one epoch order."""
    order = train_set.epoch_order(np.random.default_rng([seed, 0]))
    per_epoch = max(1, len(order) // (cfg["batch_size"] * dist.world))
    total = cfg["epochs"] * per_epoch if cfg.get("epochs") else cfg["steps"]
    if cfg.get("schedule", "warmup_cosine") == "epoch_cosine":
        return total, per_epoch, epoch_cosine(per_epoch, math.ceil(total / per_epoch))
    return total, per_epoch, warmup_cosine(cfg["warmup_steps"], total)


def loader(dataset, collate, batches, workers: int, device: torch.device) -> torch.utils.data.DataLoader:
    # its own generator: starting an iterator must not draw from torch's global RNG (dropout's), or a resumed run
    # (one iterator fewer) would drift from an uninterrupted one
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=workers,
                                       pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def validation_loss(model, loss_fn, valid_set, collate, batch_size: int, device: torch.device,
                    dtype: torch.dtype | None = None) -> float:
    """Mean loss over the validation set (batch losses weighted by batch size)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    batches = [list(range(i, min(i + batch_size, len(valid_set)))) for i in range(0, len(valid_set), batch_size)]
    for batch in loader(valid_set, collate, batches, 0, device):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            total += float(loss_fn(model, batch.to(device))) * len(batch)
        count += len(batch)
    model.train(was_training)
    return total / max(count, 1)


def state_on_cpu(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def read_checkpoint(path: Path) -> dict | None:
    """A resume checkpoint, read with torch's restricted unpickler (tensors, numbers, strings and containers only:
    the states above are kept in those types); one it refuses, or a truncated one, is ignored and overwritten."""
    if not path.is_file():
        return None
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError for a forbidden global; anything else for a broken file
        print(f"{path}: unusable resume checkpoint, starting afresh ({type(exc).__name__}: {str(exc)[:200]})")
        return None
    return content if isinstance(content, dict) else None


def fit(model: torch.nn.Module, loss_fn, train_set, valid_set, collate, cfg: dict, *, seed: int,
        checkpoint: str | Path, fingerprint: str, device: torch.device, dist: Dist = Dist(), desc: str = "train",
        after_step: Callable[[int], None] | None = None, log_path: str | Path | None = None) -> dict:
    """Train `model` in place (it ends with the best validation weights) and return the training curve.

    `cfg` is a `train` section of the config (steps or epochs, schedule, batch_size, lr, weight_decay,
    warmup_steps, grad_clip, eval_every (None: once per epoch), patience, checkpoint_every, workers; optional
    accumulate, precision). `after_step(step)` runs after each optimizer step (tests use it to interrupt a run).
    """
    checkpoint = Path(checkpoint)
    model.to(device).train()
    replica = (torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                         else None) if dist.world > 1 else model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg["lr"],
                                  weight_decay=cfg["weight_decay"])
    total, per_epoch, lr_factor = schedule(train_set, cfg, seed, dist)
    eval_every = cfg["eval_every"] or per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    state = {"step": 0, "best_loss": math.inf, "best_step": 0, "best_model": None, "bad_evals": 0, "curve": []}

    resumed = read_checkpoint(checkpoint)
    if resumed and resumed["fingerprint"] == fingerprint:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        set_rng_state(resumed["rng"])
        state = resumed["state"]
        if dist.main:
            print(f"{desc}: resuming from {checkpoint} at step {state['step']}")

    def save_checkpoint() -> None:
        if dist.main:
            with atomic_path(checkpoint) as tmp:
                torch.save({"fingerprint": fingerprint, "model": state_on_cpu(model),
                            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "rng": rng_state(), "state": state}, tmp)

    def evaluate() -> bool:
        """Record the validation loss; True when training should stop early."""
        loss = validation_loss(model, loss_fn, valid_set, collate, cfg["batch_size"], device, dtype)
        state["curve"].append({"step": state["step"], "valid_loss": loss})
        if dist.main:
            tqdm.write(f"{desc}: step {state['step']}, valid loss {loss:.4f}")
        if loss < state["best_loss"]:
            state.update(best_loss=loss, best_step=state["step"], best_model=state_on_cpu(model), bad_evals=0)
        else:
            state["bad_evals"] += 1
        return state["bad_evals"] >= cfg["patience"]

    stopped = state.get("stopped", False)
    accumulate, dtype = cfg.get("accumulate", 1), autocast_dtype(cfg.get("precision", "auto"), device)
    batches = micro_batches(step_batches(train_set, cfg["batch_size"], seed, state["step"], dist), accumulate)
    data = iter(loader(train_set, collate, batches, cfg["workers"], device))
    log = TrainLog(log_path if dist.main else None, state["step"])
    progress = tqdm(total=total, initial=state["step"], desc=desc, unit="step", disable=not dist.main,
                    mininterval=2.0)
    running, started, start_step = None, time.perf_counter(), state["step"]
    while state["step"] < total and not stopped:
        tick = time.perf_counter()
        micro = [next(data).to(device, non_blocking=True) for _ in range(accumulate)]
        samples = sum(len(b) for b in micro)
        optimizer.zero_grad(set_to_none=True)
        value = 0.0
        for batch in micro:  # each micro-batch's mean loss weighted by its share of the step's samples
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(replica, batch) * (len(batch) / samples)
            loss.backward()
            value += float(loss.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"] or math.inf))
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        state["step"] += 1
        running = value if running is None else 0.9 * running + 0.1 * value
        progress.update(1)
        progress.set_postfix(loss=f"{running:.3f}", refresh=False)
        valid = None
        if state["step"] % eval_every == 0 or state["step"] == total:
            stopped = state["stopped"] = evaluate()
            state["curve"][-1]["train_loss"] = running
            valid = state["curve"][-1]["valid_loss"]
        log.step(state["step"], value, lr, grad_norm, samples / max(time.perf_counter() - tick, 1e-9), valid)
        if state["step"] % cfg["checkpoint_every"] == 0 or state["step"] == total or stopped:
            save_checkpoint()
        if after_step is not None:
            after_step(state["step"])
    progress.close()
    log.close()
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    return {"steps": state["step"], "best_step": state["best_step"], "best_valid_loss": state["best_loss"],
            "stopped_early": bool(stopped), "curve": state["curve"],
            "train_s": round(time.perf_counter() - started, 2), "steps_this_run": state["step"] - start_step}
