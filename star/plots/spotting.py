"""A spotter's confidence of every second over each half of a game, with its spots (kept by NMS) and the ground
truth's annotations."""

from __future__ import annotations

import argparse
from pathlib import Path

from star.data.jsonio import read_json_object
from star.data.soccernet import load_labels
from star.errors import InputError
from star.plots import figure, save


def plot_spotting(spots: list[Path], labels: Path | None, out: Path, title: str | None = None,
                  threshold: float | None = None) -> None:
    truth = load_labels(labels) if labels is not None else None
    fig, axes = figure(12, 2.6 * len(spots), rows=len(spots), cols=1)
    for ax, path in zip(axes[:, 0], spots, strict=True):
        content = read_json_object(path, InputError, "spots file")
        half = int(Path(path).stem)   # spots/<game>/<half>.json
        confidence = content.get("confidence", [])
        ax.fill_between(range(len(confidence)), confidence, color="#fc9", lw=0, step="mid")
        ax.plot(range(len(confidence)), confidence, color="#e80", lw=0.8, label="confidence (1 - P(background))")
        if truth is not None:
            for i, a in enumerate(truth.half(half)):
                ax.axvline(a.seconds, color="#36c", lw=1, alpha=0.7, label="ground truth" if i == 0 else None)
        kept = content.get("spots", [])
        ax.plot([s["seconds"] for s in kept], [s["confidence"] for s in kept], "v", color="#c33", ms=7,
                label=f"spots ({len(kept)})")
        if threshold is not None:
            ax.axhline(threshold, color="#999", ls="--", lw=0.8, label=f"threshold {threshold:g}")
        ax.set_xlim(0, max(len(confidence), 1))
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"half {half}")
        ax.grid(alpha=0.3)
    handles, labels_ = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="lower center", fontsize=8, ncols=4, bbox_to_anchor=(0.5, -0.04))
    axes[0, 0].set_title(title or Path(spots[0]).parent.name)
    axes[-1, 0].set_xlabel("video time in the half (s)")
    save(fig, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spots", type=Path, nargs="+", required=True,
                        help="spots JSON of each half (`star spotting-infer`), named <half>.json")
    parser.add_argument("--labels", type=Path, help="Labels-caption.json of the game (the ground truth)")
    parser.add_argument("--threshold", type=float, help="the NMS threshold, drawn as a line")
    parser.add_argument("--title", help="figure title (default: the game's folder)")


def run(args: argparse.Namespace) -> int:
    plot_spotting(args.spots, args.labels, args.out, args.title, args.threshold)
    return 0
