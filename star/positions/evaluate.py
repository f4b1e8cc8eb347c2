"""`star positions-evaluate`: score positions caches against the synthetic world's ground truth.

Truth per half, in the game folder: `{half}_Labels-GameState.json` (everyone on the pitch each second, flagged
visible when in the main camera's picture; `positions.gamestate_json` names it and its rate) and
`{half}_camera.json` (the true main camera per video frame, null during cuts). Per half, and pooled over all:

- calibrated_share: samples with a camera; main_calibrated_share: the same among samples the main camera shows;
  false_calibrations: calibrated samples during cuts (and their share of cut samples);
- players, on main-camera samples, people visible in the picture vs predicted slots, matched one to one by the
  Hungarian method on distance within 2 m: recall (an uncalibrated sample misses all its people), recall among
  calibrated samples, precision, median position error of the matches; the median error also with a 5 m gate;
- team_accuracy: matched people of a team (left/right) given the right team; role_accuracy: matched people
  given the right role;
- ball, on main-camera samples: ball_recall (the ball in the picture, found within 2 m), ball_precision (balls
  reported on calibrated samples that are within 2 m of the true one), median ball error of those matches.

    star positions-evaluate --positions a.h5 b.h5 --root results/world --manifest manifest.tsv --out report.json
    star positions-evaluate --positions a.h5 --game-dir GAME_FOLDER --out report.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from star.config import section
from star.data.cache import cache_attrs, open_cache, require_ball
from star.data.games import read_manifest
from star.errors import InputError
from star.positions.gamestate_json import GameStateFrames, read_gamestate
from star.provenance import write_text_atomic

GATE_M = 2.0
WIDE_GATE_M = 5.0
CAMERA_FILE = "{half}_camera.json"


@dataclass
class Tally:
    """Counts of one half (or pooled over halves)."""

    samples: int = 0
    calibrated: int = 0
    main: int = 0
    main_calibrated: int = 0
    cut_calibrated: int = 0
    truth: int = 0                 # visible people on main-camera samples
    truth_calibrated: int = 0      # ... on calibrated ones
    predicted: int = 0             # predicted people on calibrated main-camera samples
    matched: int = 0
    team_known: int = 0            # matched people of a team
    team_right: int = 0
    role_right: int = 0
    ball_truth: int = 0            # samples whose ball is in the picture
    ball_predicted: int = 0        # balls reported on calibrated main-camera samples
    ball_matched: int = 0
    ball_errors: list = field(default_factory=list)   # m, ball matches within GATE_M
    errors: list = field(default_factory=list)        # m, matches within GATE_M
    wide_errors: list = field(default_factory=list)   # m, matches within WIDE_GATE_M

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def report(self) -> dict:
        share = lambda a, b: round(a / b, 4) if b else None
        median = lambda v: round(float(np.median(v)), 4) if v else None
        cut = self.samples - self.main
        return {
            "samples": self.samples, "calibrated_share": share(self.calibrated, self.samples),
            "main_samples": self.main, "main_calibrated_share": share(self.main_calibrated, self.main),
            "cut_samples": cut, "false_calibrations": self.cut_calibrated,
            "false_calibration_share": share(self.cut_calibrated, cut),
            "people_truth": self.truth, "people_predicted": self.predicted, "people_matched": self.matched,
            "recall": share(self.matched, self.truth), "recall_calibrated": share(self.matched, self.truth_calibrated),
            "precision": share(self.matched, self.predicted),
            "median_error_m": median(self.errors), f"median_error_m_gate{WIDE_GATE_M:g}": median(self.wide_errors),
            "team_accuracy": share(self.team_right, self.team_known),
            "role_accuracy": share(self.role_right, self.matched),
            "ball_truth": self.ball_truth, "ball_predicted": self.ball_predicted,
            "ball_recall": share(self.ball_matched, self.ball_truth),
            "ball_precision": share(self.ball_matched, self.ball_predicted),
            "ball_median_error_m": median(self.ball_errors),
        }


def match(predicted: np.ndarray, truth: np.ndarray, gate: float) -> list[tuple[int, int, float]]:
    """One-to-one matches (predicted index, truth index, distance) within `gate` metres, minimum total distance."""
    if not len(predicted) or not len(truth):
        return []
    distance = np.linalg.norm(predicted[:, None] - truth[None], axis=2)               # [p, t]
    rows, cols = linear_sum_assignment(np.where(distance <= gate, distance, 1e6))
    return [(r, c, float(distance[r, c])) for r, c in zip(rows, cols, strict=True) if distance[r, c] <= gate]


def main_camera_samples(path: Path, samples: int, fps: float) -> np.ndarray:
    """[samples] whether the main camera is on air at time k / fps, from a `{half}_camera.json`."""
    try:
        data = json.loads(Path(path).read_text())
        frames, camera_fps = data["frames"], float(data["fps"])
    except FileNotFoundError:
        raise InputError(f"{path}: camera file does not exist") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(f"{path}: expected a JSON object with 'fps' and a 'frames' list") from None
    index = np.minimum(np.round(np.arange(samples) / fps * camera_fps).astype(int), len(frames) - 1)
    return np.array([frames[i] is not None for i in index], bool) if frames else np.zeros(samples, bool)


def score_half(arrays: dict, fps: float, truth: GameStateFrames, truth_fps: float, main: np.ndarray) -> Tally:
    """Tally of one half: `arrays` a positions cache's datasets, `main` [N] samples on the main camera."""
    tally = Tally(samples=len(arrays["calibrated"]))
    for k, calibrated in enumerate(arrays["calibrated"]):
        tally.calibrated += bool(calibrated)
        if not main[k]:
            tally.cut_calibrated += bool(calibrated)
            continue
        tally.main += 1
        tally.main_calibrated += bool(calibrated)
        frame = int(round(k * truth_fps / fps))
        people, ball = truth.people.get(frame, []), truth.balls.get(frame)
        tally.truth += len(people)
        tally.ball_truth += ball is not None
        if not calibrated:
            continue
        if arrays["ball_visible"][k]:
            tally.ball_predicted += 1
            if ball is not None and (d := float(np.hypot(*(arrays["ball"][k] - ball[:2])))) <= GATE_M:
                tally.ball_matched += 1
                tally.ball_errors.append(d)
        tally.truth_calibrated += len(people)
        slots = arrays["mask"][k]
        predicted, team, role = arrays["xy"][k][slots], arrays["team"][k][slots], arrays["role"][k][slots]
        tally.predicted += len(predicted)
        table = np.asarray(people, float).reshape(-1, 5)                         # x, y, team, role, jersey
        pairs = match(predicted, table[:, :2], GATE_M)
        tally.errors.extend(d for *_, d in pairs)
        tally.wide_errors.extend(d for *_, d in match(predicted, table[:, :2], WIDE_GATE_M))
        tally.matched += len(pairs)
        for p, t, _ in pairs:
            tally.role_right += int(role[p] == table[t, 3])
            if table[t, 2] >= 0:
                tally.team_known += 1
                tally.team_right += int(team[p] == table[t, 2])
    return tally


def evaluate_cache(path: Path, attrs: dict, game_dir: Path, config: dict) -> Tally:
    half, fps = int(attrs["half"]), float(attrs["fps"])
    with open_cache(path, "positions") as h5:
        require_ball(h5, path)
        arrays = {name: h5[name][:] for name in ("xy", "team", "role", "mask", "calibrated", "ball", "ball_visible")}
    truth = read_gamestate(game_dir / config["gamestate_json"]["file"].format(half=half))
    main = main_camera_samples(game_dir / CAMERA_FILE.format(half=half), len(arrays["calibrated"]), fps)
    return score_half(arrays, fps, truth, config["gamestate_json"]["fps"], main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--positions", nargs="+", required=True, help="positions caches (HDF5)")
    parser.add_argument("--out", required=True, help="JSON report to write")
    parser.add_argument("--game-dir", help="game folder of the truth (when all caches are of one game)")
    parser.add_argument("--root", help="dataset root; with --manifest, finds each cache's game folder")
    parser.add_argument("--manifest", help="games manifest (id, split, path)")
    parser.add_argument("--config", help="positions section: inline JSON or a YAML file")


def run(args: argparse.Namespace) -> int:
    config = section("positions", args.config)
    if args.game_dir is None and (args.root is None or args.manifest is None):
        raise InputError("give --game-dir, or --root and --manifest to find the truth of each cache")
    folders = {g.id: Path(args.root) / g.path for g in read_manifest(args.manifest)} if args.manifest else {}
    pooled, halves = Tally(), []
    for path in map(Path, args.positions):
        attrs = cache_attrs(path)
        game = str(attrs["game"])
        if args.game_dir is None and game not in folders:
            raise InputError(f"{path}: game {game!r} is not in the manifest {args.manifest}")
        tally = evaluate_cache(path, attrs, Path(args.game_dir) if args.game_dir else folders[game], config)
        pooled.add(tally)
        halves.append({"positions": str(path), "game": game, "half": int(attrs["half"]), **tally.report()})
    report = {"gate_m": GATE_M, "overall": pooled.report(), "halves": halves}
    write_text_atomic(args.out, json.dumps(report, indent=1))
    print(json.dumps(report["overall"], indent=1))
    return 0
