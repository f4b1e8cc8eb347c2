"""Localized players against the synthetic world's ground truth on the pitch (105 x 68 m), at a few seconds of a
half: truth as open circles, the positions cache's players as crosses, both coloured by team."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from star.data.cache import open_cache
from star.errors import InputError
from star.plots import figure, save
from star.positions.gamestate_json import read_gamestate

LENGTH, WIDTH = 105.0, 68.0
TEAM_COLOURS = {0: "#c33", 1: "#36c"}   # other or unknown team (referee, -1): grey


def draw_pitch(ax) -> None:
    """Touchlines, halfway line, centre circle, penalty and goal areas (metres, origin at the centre spot)."""
    from matplotlib.patches import Circle, Rectangle

    hx, hy = LENGTH / 2, WIDTH / 2
    ax.add_patch(Rectangle((-hx, -hy), LENGTH, WIDTH, fill=True, color="#e8f3e8", zorder=0))
    line = {"color": "#7a7", "lw": 1, "fill": False, "zorder": 1}
    ax.add_patch(Rectangle((-hx, -hy), LENGTH, WIDTH, **line))
    ax.plot([0, 0], [-hy, hy], color="#7a7", lw=1, zorder=1)
    ax.add_patch(Circle((0, 0), 9.15, **line))
    for side in (-1, 1):
        ax.add_patch(Rectangle((side * hx - (16.5 if side > 0 else 0), -20.16), 16.5, 40.32, **line))
        ax.add_patch(Rectangle((side * hx - (5.5 if side > 0 else 0), -9.16), 5.5, 18.32, **line))
    ax.set_xlim(-hx - 3, hx + 3)
    ax.set_ylim(-hy - 3, hy + 3)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def pick_samples(calibrated: np.ndarray, count: int) -> list[int]:
    """`count` calibrated samples spread evenly over the half."""
    usable = np.flatnonzero(calibrated)
    if not len(usable):
        return []
    picks = np.linspace(0, len(usable) - 1, min(count, len(usable))).round().astype(int)
    return sorted({int(usable[i]) for i in picks})


def colour(team: float) -> str:
    return TEAM_COLOURS.get(int(team), "#888")


def plot_pitch(positions: Path, truth_path: Path, out: Path, truth_fps: float = 1.0, count: int = 4,
               title: str | None = None) -> None:
    with open_cache(positions, "positions") as h5:
        arrays = {name: h5[name][:] for name in ("xy", "team", "mask", "calibrated")}
        fps, half = float(h5.attrs["fps"]), int(h5.attrs["half"])
    truth = read_gamestate(truth_path)
    samples = pick_samples(arrays["calibrated"], count)
    if not samples:
        raise InputError(f"{positions}: no calibrated sample to draw")
    fig, axes = figure(6.5 * len(samples) / 2, 4.6 * 2 if len(samples) > 2 else 4.6,
                       rows=2 if len(samples) > 2 else 1, cols=(len(samples) + 1) // 2 if len(samples) > 2
                       else len(samples))
    for ax in axes.flat[len(samples):]:
        ax.set_visible(False)
    for ax, k in zip(axes.flat, samples, strict=False):
        draw_pitch(ax)
        people = np.asarray(truth.people.get(int(round(k * truth_fps / fps)), []), float).reshape(-1, 5)
        for x, y, team, *_ in people:  # x, y, team, role, jersey
            ax.plot(x, y, "o", mfc="none", mec=colour(team), ms=8, mew=1.2, zorder=2)
        slots = arrays["mask"][k]
        for (x, y), team in zip(arrays["xy"][k][slots], arrays["team"][k][slots], strict=True):
            ax.plot(x, y, "x", color=colour(team), ms=6, mew=1.5, zorder=3)
        ax.set_title(f"{k / fps:.0f} s: {int(slots.sum())} localized, {len(people)} in the truth", fontsize=9)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", mfc="none", mec="#444", label="ground truth"),
               Line2D([], [], ls="", marker="x", color="#444", label="localized"),
               Line2D([], [], ls="", marker="s", color=TEAM_COLOURS[0], label="team 0"),
               Line2D([], [], ls="", marker="s", color=TEAM_COLOURS[1], label="team 1"),
               Line2D([], [], ls="", marker="s", color="#888", label="other / unknown")]
    fig.legend(handles=handles, loc="lower center", ncols=5, fontsize=8)
    fig.suptitle(title or f"{Path(positions).parent.name}, half {half}", fontsize=10)
    save(fig, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--positions", type=Path, required=True, help="positions cache of one half (HDF5)")
    parser.add_argument("--truth", type=Path, required=True, help="the half's Game State JSON (ground truth)")
    parser.add_argument("--truth-fps", type=float, default=1.0, help="frame rate of the truth's image ids")
    parser.add_argument("--samples", type=int, default=4, help="seconds drawn, spread over the half")
    parser.add_argument("--title", help="figure title (default: the game and half)")


def run(args: argparse.Namespace) -> int:
    plot_pitch(args.positions, args.truth, args.out, args.truth_fps, args.samples, args.title)
    return 0
