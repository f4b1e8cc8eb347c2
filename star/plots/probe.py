"""The feature probe's confusion matrix on the held-out halves (`star features-probe`'s report), rows normalised
to the true class, counts written in each cell."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from star.data.jsonio import read_json_object
from star.errors import InputError
from star.plots import figure, save


def plot_probe(probe: Path, out: Path, title: str | None = None) -> None:
    report = read_json_object(probe, InputError, "probe report")
    confusion = report.get("features", {}).get("confusion")
    if not confusion:
        raise InputError(f"{probe}: no confusion matrix in the probe report (rerun `star features-probe`)")
    classes, counts = confusion["classes"], np.asarray(confusion["matrix"], float)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 2 + 0.55 * len(classes)
    fig, axes = figure(size + 1.5, size)
    ax = axes[0, 0]
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(j, i, f"{int(n)}", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    scores = report["features"]
    ax.set_title(title or f"{report.get('encoder', '')} probe: balanced accuracy {scores['balanced_accuracy']:.2f} "
                 f"(chance {report.get('chance_balanced_accuracy', float('nan')):.2f})")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    save(fig, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--probe", type=Path, required=True, help="probe.json of `star features-probe`")
    parser.add_argument("--title", help="figure title (default: encoder and balanced accuracy)")


def run(args: argparse.Namespace) -> int:
    plot_probe(args.probe, args.out, args.title)
    return 0
