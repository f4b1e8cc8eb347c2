"""How long `star doctor` takes to check a half video by decoding it through (what `star decode` would find),
against the one-frame `--quick` check: a 398x224, 25 fps H.264 video (SoccerNet's 224p) of --seconds seconds.

    python bench/bench_doctor.py [--seconds 120]

Prints the median of three runs, seconds of checking per minute of video, and the estimate for a 45-min half.
"""

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from star.doctor import probe_video


def write_224p(path: Path, seconds: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (224, 398, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 398, 224, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for k in range(seconds * 25):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 3 * k, axis=1), format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "1_224p.mkv"
        write_224p(video, args.seconds)
        for quick in (False, True):
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                probe_video(video, quick=quick)
                runs.append(time.perf_counter() - start)
            median = statistics.median(runs)
            per_minute = median / (args.seconds / 60)
            print(f"{'quick (one frame)' if quick else 'full decode':18s} {median:7.2f} s for {args.seconds} s of "
                  f"video = {per_minute:6.2f} s per video minute, ~{45 * per_minute:6.1f} s per 45-min half")


if __name__ == "__main__":
    main()
