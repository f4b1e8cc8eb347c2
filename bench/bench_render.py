"""Time the broadcast renderer on one simulated half, in CPU milliseconds per frame on one core: drawing alone,
then drawing plus H.264 encoding (`render_half`) for each x264 preset, with the video's size.

    .venv/bin/python bench/bench_render.py [--seconds 300] [--presets superfast fast] [--seed 0]

CPU time (not wall time) is reported, so other processes on the machine disturb the figures less.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from star.config import section
from star.world.plan import plan_games
from star.world.render import Broadcast, render_half
from star.world.simulate import simulate_match


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300, help="half length (world.half_duration_s)")
    parser.add_argument("--presets", nargs="+", default=["ultrafast", "superfast", "veryfast", "fast"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    world = section("world", {"half_duration_s": args.seconds})
    start = time.process_time()
    match = simulate_match(plan_games(world, args.seed)[0], world)
    print(f"simulate one game: {time.process_time() - start:.2f} s")
    track = match.halves[0]

    broadcast = Broadcast(match, track, world, args.seed)
    frames = len(broadcast.times)
    cuts = sum(camera is None for camera in broadcast.true_cameras())
    start = time.process_time()
    for i in range(frames):
        broadcast.frame(i)
    draw_ms = (time.process_time() - start) / frames * 1e3
    print(f"{frames} frames of {world['width']}x{world['height']} at {world['video_fps']} fps ({cuts} in cuts)")
    print(f"draw only: {draw_ms:.2f} ms/frame")

    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            path = Path(tmp) / f"{preset}.mkv"
            start = time.process_time()
            render_half(match, track, path, {**world, "preset": preset}, args.seed)
            total_ms = (time.process_time() - start) / frames * 1e3
            print(f"render_half {preset:>9}: {total_ms:.2f} ms/frame "
                  f"(encoding ~{total_ms - draw_ms:.2f}), {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
