"""Spotting inference on a SoccerNet-length half: STaR's against Delta's time and peak memory.

    python bench/bench_inference.py [--seconds 2700] [--dim 8576] [--rounds 3] [--threads 1]

Writes one half of `--seconds` x `--dim` float32 features (Baidu-shaped) to a temporary folder, builds the `tiny`
preset's STaR spotter (variant `nopos`: the half has no positions; the global stage over the whole half is what
this measures) and Delta's spotter with their initial weights (speed and memory do not depend on training), saved
as trained-model files with a standardisation, then runs `star spotting-infer` on the half in a fresh process per
run, alternating methods, `--rounds` times. Prints each method's wall time and peak resident memory (the child's
getrusage), their medians and STaR's time as a multiple of Delta's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

METHODS = {"star": "nopos", "delta": "default"}


def write_inputs(work: Path, seconds: int, dim: int) -> Path:
    import torch

    from star.data.cache import write_cache
    from star.model_file import build_model, save_model
    from star.train.common import method_config, n_classes, read_config

    rng = np.random.default_rng(0)
    features = rng.standard_normal((seconds, dim), dtype=np.float32)
    path = write_cache(work / "half.h5", "features", {"features": features}, {}, game="bench", half=1, fps=1.0,
                       dim=dim, encoder="bench")
    norm = (features.mean(0), features.std(0))
    cfg = read_config(None)
    for method, variant in METHODS.items():
        torch.manual_seed(0)
        model_cfg = method_config(cfg, method, variant)
        model = build_model("spotting", method, model_cfg, dim, classes=n_classes(cfg))
        save_model(work / f"{method}.safetensors", model, stage="spotting", method=method, variant=variant,
                   preset="tiny", model_cfg=model_cfg, feature_dim=dim, fps=1.0, encoder="bench", norm=norm,
                   tokenizer=None, provenance={}, training={}, classes=n_classes(cfg))
    return path


def run_once(work: Path, method: str, features: Path, threads: int) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one `star spotting-infer`."""
    script = ("import resource, sys, time; from star.cli import main; t = time.perf_counter(); "
              "main(sys.argv[1:]); print('WALL', time.perf_counter() - t); "
              "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    cmd = [sys.executable, "-c", script, "spotting-infer", "--model", str(work / f"{method}.safetensors"),
           "--features", str(features), "--out", str(work / f"{method}.json"), "--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode:
        sys.exit(f"{method} failed:\n{proc.stderr[-3000:]}")
    wall = time.perf_counter() - started  # the whole process: imports, model load, reading, scoring
    rss = float(next(x.split()[1] for x in proc.stdout.splitlines() if x.startswith("RSS")))
    return wall, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=2700)
    parser.add_argument("--dim", type=int, default=8576)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        features = write_inputs(work, args.seconds, args.dim)
        runs = {m: [] for m in METHODS}
        for _ in range(args.rounds):
            for method in METHODS:
                runs[method].append(run_once(work, method, features, args.threads))
                print(method, [round(x, 1) for x in runs[method][-1]], flush=True)
        spots = {m: len(json.loads((work / f"{m}.json").read_text())["confidence"]) for m in METHODS}
    summary = {m: {"wall_s": round(statistics.median(w for w, _ in r), 1),
                   "peak_rss_mb": round(statistics.median(m for _, m in r)), "seconds_scored": spots[m],
                   "runs": [[round(w, 1), round(m)] for w, m in r]} for m, r in runs.items()}
    summary["star_over_delta_time"] = round(summary["star"]["wall_s"] / summary["delta"]["wall_s"], 2)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
