"""Where `star caption` spends a long half: the wall time of each of its stages (decoding, features, players,
spotting, captioning) on a rendered synthetic half, for each checkpoint given (issue 14: a half's captioning should
be dominated by decoding and feature extraction, not by STaR's global path).

    star export --from-results results --method star star-ckpt      # checkpoints of a workflow run
    star export --from-results results --method delta delta-ckpt
    .venv/bin/python bench/bench_caption.py --checkpoint star-ckpt delta-ckpt [--seconds 2700] [--threads 1]

Each checkpoint's run is a fresh `star caption` process; a stage's time is from its progress line to the next one
(the last to the process's end), so start-up and model loading fall in the stage that first needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from star.config import section
from star.world.plan import plan_games
from star.world.render import render_half
from star.world.simulate import simulate_match

STAGE = re.compile(r"^star caption: \[(\d)/5\]")
NAMES = {"1": "decoding", "2": "features", "3": "players", "4": "spotting", "5": "captioning + writing"}


def render(seconds: float, folder: Path, seed: int) -> Path:
    """One rendered half of `seconds` at the world's default size and rate."""
    world = section("world", {"half_duration_s": seconds})
    match = simulate_match(plan_games(world, seed)[0], world)
    video = folder / "1_224p.mkv"
    render_half(match, match.halves[0], video, world, seed)
    return video


def caption(video: Path, checkpoint: Path, out: Path, threads: int) -> tuple[dict[str, float], float, float]:
    """({stage: wall s}, whole process wall s, peak RSS MB) of one `star caption` run."""
    command = [sys.executable, "-m", "star.cli", "caption", str(video), "--checkpoint", str(checkpoint),
               "--out", str(out), "--threads", str(threads)]
    start = time.perf_counter()
    marks: list[tuple[str, float]] = [("start-up", start)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    for line in proc.stdout:
        if match := STAGE.match(line):
            marks.append((NAMES[match.group(1)], time.perf_counter()))
    _, status, usage = os.wait4(proc.pid, 0)  # this process's own peak RSS, not the largest child's so far
    end = time.perf_counter()
    if code := os.waitstatus_to_exitcode(status):
        raise SystemExit(f"star caption failed ({code}) with {checkpoint}")
    stages = {name: later - at for (name, at), (_, later) in zip(marks, [*marks[1:], ("end", end)], strict=True)}
    return stages, end - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, nargs="+", required=True, help="folders written by star export")
    parser.add_argument("--seconds", type=float, default=2700, help="half length (SoccerNet: 2700)")
    parser.add_argument("--threads", type=int, default=1, help="star caption --threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):  # the renderer's progress bar
            video = render(args.seconds, Path(tmp), args.seed)
        print(f"rendered a {args.seconds:g}-s half in {time.perf_counter() - start:.0f} s: {video.name}, "
              f"{video.stat().st_size / 2**20:.1f} MiB")
        for checkpoint in args.checkpoint:
            stages, total, peak = caption(video, checkpoint, Path(tmp) / checkpoint.name, args.threads)
            shares = ", ".join(f"{name} {s:.1f} s ({100 * s / total:.0f}%)" for name, s in stages.items())
            print(f"{checkpoint}: {total:.1f} s, peak RSS {peak:.0f} MB: {shares}")


if __name__ == "__main__":
    main()
