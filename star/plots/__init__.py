"""`star plot <figure>`: the figures of the Snakemake report (matplotlib, written as PNG), one entry point each.

    star plot training --log .../train_log.csv --out training.png [--title T]
    star plot spotting --spots .../spots/<game>/1.json .../2.json --labels <game>/Labels-caption.json --out x.png
    star plot pitch --positions results/positions/classical/<game>/1.h5 --truth <game>/1_Labels-GameState.json \\
        --out pitch.png
    star plot probe --probe results/features/pptimesformer/probe.json --out probe.png

Figures are deterministic (fixed size and dpi, no timestamps in the PNG metadata), so a rerun writes the same bytes.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

# figure -> (module, help)
FIGURES = {
    "training": ("star.plots.training", "training curves of one model: train and valid loss, lr, gradient norm"),
    "spotting": ("star.plots.spotting", "a spotter's confidence over each half of a game, spots and ground truth"),
    "pitch": ("star.plots.pitch", "localized players against the synthetic world's ground truth on the pitch"),
    "probe": ("star.plots.probe", "the feature probe's confusion matrix on the held-out halves"),
}


def figure(width: float = 10, height: float = 5, rows: int = 1, cols: int = 1, **kwargs):
    """A matplotlib figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(width, height), squeeze=False, **kwargs)


def save(fig, out: str | Path) -> None:
    """PNG without creation metadata (same bytes on a rerun), written atomically."""
    import matplotlib.pyplot as plt

    from star.provenance import atomic_path

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="figure", required=True, metavar="figure")
    for name, (module, help_text) in FIGURES.items():
        sub = subs.add_parser(name, help=help_text, description=help_text, formatter_class=parser.formatter_class)
        importlib.import_module(module).add_arguments(sub)
        sub.add_argument("--out", type=Path, required=True, help="PNG to write")


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(FIGURES[args.figure][0]).run(args) or 0)
