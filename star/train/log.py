"""Training logs written while a model trains: one CSV row per optimizer step (and TensorBoard scalars when the
`tensorboard` package is installed), so a long run can be watched (`tail -f`, `tensorboard --logdir`) and plotted.

Columns: step, train_loss (this step's loss), valid_loss (at evaluation steps, else empty), lr, grad_norm (before
clipping) and samples_per_s (this step's samples over its wall time). A resumed run keeps the rows up to the step it
resumes from and appends the rest, so the file reads as one run.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

COLUMNS = ["step", "train_loss", "valid_loss", "lr", "grad_norm", "samples_per_s"]


class TrainLog:
    """Rows appended and flushed as training goes; `None` path logs nothing (ranks other than 0)."""

    def __init__(self, path: str | Path | None, resume_step: int = 0):
        self.path, self.file, self.writer, self.tensorboard = path and Path(path), None, None, None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_step and self.path.is_file():
            with self.path.open(newline="") as f:
                kept = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= resume_step]
        self.file = self.path.open("w", newline="")
        self.writer = csv.DictWriter(self.file, COLUMNS)
        self.writer.writeheader()
        self.writer.writerows(kept)
        self.file.flush()
        try:  # optional: TensorBoard event files beside the CSV
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.tensorboard = SummaryWriter(str(self.path.with_suffix("")) + "_tensorboard", purge_step=resume_step + 1)

    def step(self, step: int, train_loss: float, lr: float, grad_norm: float, samples_per_s: float,
             valid_loss: float | None = None) -> None:
        if self.writer is None:
            return
        row = {"step": step, "train_loss": f"{train_loss:.6g}", "lr": f"{lr:.6g}", "grad_norm": f"{grad_norm:.6g}",
               "samples_per_s": f"{samples_per_s:.4g}",
               "valid_loss": "" if valid_loss is None else f"{valid_loss:.6g}"}
        self.writer.writerow(row)
        self.file.flush()
        if self.tensorboard is not None:
            for key, value in (("loss/train", train_loss), ("loss/valid", valid_loss), ("lr", lr),
                               ("grad_norm", grad_norm), ("samples_per_s", samples_per_s)):
                if value is not None and math.isfinite(value):
                    self.tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_log(path: str | Path) -> dict[str, list[float]]:
    """The CSV as columns of floats (NaN where a cell is empty)."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {c: [float(r[c]) if r.get(c) not in (None, "") else math.nan for r in rows] for c in COLUMNS}
