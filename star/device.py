"""Where models run: `model.device` is `auto` (CUDA when torch sees a GPU), `cpu` or `cuda`. Inference and training
both pick their device here; the workflow asks `cuda_jobs` and `local_gpus` while building its job graph, so torch
is imported only when the answer needs it (a machine without an NVIDIA driver has no CUDA device: no torch needed).
"""

from __future__ import annotations

import os
from pathlib import Path


def pick_device(name: str, local_rank: int = 0):
    """The torch.device of `name`; under torchrun each process takes its local GPU (`local_rank`)."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def nvidia_driver() -> bool:
    """Whether an NVIDIA driver shows a device here (Linux), and CUDA_VISIBLE_DEVICES does not hide them all."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return (gpus.is_dir() and any(gpus.iterdir())) or Path("/dev/nvidia0").exists()


def local_gpus() -> int:
    """CUDA devices torch sees here (0 without torch's CUDA, or without a driver: then torch is not imported)."""
    if not nvidia_driver():
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def cuda_jobs(device: str) -> bool:
    """Whether models configured with `device` run on a GPU here (the workflow's `gpu` resource); `cpu` answers
    without importing torch."""
    return device == "cuda" or (device == "auto" and local_gpus() > 0)
