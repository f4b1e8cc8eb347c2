"""Training curves of one model from its live log (star.train.log): train loss every step (and its moving
average), valid loss at each evaluation, the learning rate and the gradient norm."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from star.errors import InputError
from star.plots import figure, save
from star.train.log import read_log


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average, as the loop's progress bar shows it."""
    out, running = [], None
    for v in values:
        running = v if running is None else weight * running + (1 - weight) * v
        out.append(running)
    return out


def plot_training(log_path: Path, out: Path, title: str | None = None) -> None:
    if not Path(log_path).is_file():
        raise InputError(f"{log_path}: training log not found")
    log = read_log(log_path)
    if not log["step"]:
        raise InputError(f"{log_path}: the training log holds no step")
    steps = np.asarray(log["step"])
    fig, axes = figure(9, 7, rows=3, cols=1, sharex=True, gridspec_kw={"height_ratios": [3, 1, 1]})
    loss, lr, grad = axes[:, 0]
    loss.plot(steps, log["train_loss"], color="#9ab", lw=0.8, label="train loss (each step)")
    loss.plot(steps, smooth(log["train_loss"]), color="#246", lw=1.5, label="train loss (moving average)")
    valid = [(s, v) for s, v in zip(steps, log["valid_loss"], strict=True) if not math.isnan(v)]
    if valid:
        vs, vv = zip(*valid, strict=True)
        loss.plot(vs, vv, "o-", color="#c33", label="valid loss")
        best = int(np.argmin(vv))
        loss.annotate(f"best {vv[best]:.3f} @ {vs[best]}", (vs[best], vv[best]), textcoords="offset points",
                      xytext=(5, 8), color="#c33")
    loss.set_ylabel("loss")
    loss.legend(loc="upper right")
    loss.set_title(title or Path(log_path).parent.as_posix())
    lr.plot(steps, log["lr"], color="#383")
    lr.set_ylabel("lr")
    lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    grad.plot(steps, log["grad_norm"], color="#666", lw=0.8)
    grad.set_ylabel("grad norm")
    grad.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    save(fig, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", type=Path, required=True, help="train_log.csv written while training")
    parser.add_argument("--title", help="figure title (default: the model's folder)")


def run(args: argparse.Namespace) -> int:
    plot_training(args.log, args.out, args.title)
    return 0
