"""Training on a SoccerNet-size feature store: peak memory and samples per second at two store sizes.

    python bench/bench_training.py --store /tmp/bench_store --halves 48 472 [--steps 40] [--keep]

Writes a synthetic store of `max(--halves)` halves of 2700 s x 8576-d float32 features at 1 fps (SoccerNet's
Baidu features: 942 halves, 87 GB; one half is 92 MB), a manifest and labels with 39 annotations per half, then
trains through the real harness (`star spotting-train`) on the first N halves for each N, in a fresh process per
run, and prints the loop's samples per second and the process's peak resident memory (getrusage). Datasets read
windows lazily from HDF5, so memory must not grow with N.

Runs: SDVC's spotter (15-s windows only) and STaR's spotter with the whole half's global features (`nopos`: the
store has no positions), each sample then reading 92 MB. The features are written uncompressed (random floats do
not compress; lzf would only cost time); halves are copies of one random block with a per-half offset, which
keeps writing at disk speed.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from star.data.games import Game, write_manifest  # noqa: E402

SECONDS, DIM = 2700, 8576
RUNS = {
    "sdvc": {"method": "sdvc", "variant": "default", "batch_size": 32},
    "star_global": {"method": "star", "variant": "nopos", "batch_size": 8},
}


def write_half(path: Path, block: np.ndarray, offset: float, game: str, half: int) -> None:
    """A features cache as star.data.cache lays it out (attrs, chunks of 64 rows), uncompressed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("features", data=block + np.float32(offset), chunks=(64, DIM))
        for key, value in {"kind": "features", "game": game, "half": half, "fps": 1.0, "dim": DIM,
                           "encoder": "bench", "length": SECONDS, "provenance": "{}"}.items():
            h5.attrs[key] = value


def write_store(store: Path, halves: int, seed: int = 0) -> list[Game]:
    """`halves` halves (2 per game): all train but the last 2 games (valid)."""
    rng = np.random.default_rng(seed)
    block = rng.standard_normal((SECONDS, DIM), dtype=np.float32)
    n_games = halves // 2
    games = [Game(f"game{i:04d}", f"bench/{i:04d}", "valid" if i >= n_games - 2 else "train") for i in range(n_games)]
    started = time.perf_counter()
    for i, game in enumerate(games):
        labels = [{"gameTime": f"{h} - {s // 60:02d}:{s % 60:02d}", "label": "comments", "anonymized": "[TEAM] attack."}
                  for h in (1, 2) for s in np.sort(rng.choice(SECONDS, 39, replace=False))]
        (store / "world" / game.path).mkdir(parents=True, exist_ok=True)
        (store / "world" / game.path / "Labels-caption.json").write_text(json.dumps({"annotations": labels}))
        for h in (1, 2):
            path = store / "features" / game.id / f"{h}.h5"
            if not path.is_file():
                write_half(path, block[np.roll(np.arange(SECONDS), i * 7 + h)], rng.normal(), game.id, h)
        if i % 20 == 0:
            print(f"  store: {2 * (i + 1)}/{halves} halves, {time.perf_counter() - started:.0f} s", flush=True)
    return games


def measure(store: Path, games: int, run: str, steps: int) -> dict:
    """One training run in this process (called through a subprocess): the loop's speed and peak memory."""
    from star.cli import main

    all_games = [line.split("\t") for line in (store / "games.tsv").read_text().splitlines()[1:]]
    valid = [g for g in all_games if g[1] == "valid"]
    chosen = [g for g in all_games if g[1] == "train"][: games - len(valid)] + valid
    manifest = store / f"games_{games}.tsv"
    write_manifest([Game(g[0], g[2], g[1]) for g in chosen], manifest)
    spec = RUNS[run]
    out = store / "runs" / f"{run}_{games}"
    cfg = {"spotting": {"train": {"steps": steps, "batch_size": spec["batch_size"], "eval_every": steps,
                                  "checkpoint_every": steps, "max_valid_samples": spec["batch_size"]}},
           "model": {"cache_mb": 1024, "standardize": False}}  # statistics would read the whole store once
    main(["spotting-train", "--method", spec["method"], "--variant", spec["variant"], "--manifest", str(manifest),
          "--labels-root", str(store / "world"), "--features", str(store / "features"), "--threads", "2",
          "--config", json.dumps(cfg), "--out", str(out / "model.safetensors"),
          "--report", str(out / "train.json")])
    report = json.loads((out / "train.json").read_text())
    return {"run": run, "halves": 2 * len(chosen), "steps": report["steps"], "batch": spec["batch_size"],
            "samples_per_s": round(report["steps_this_run"] * spec["batch_size"] / report["train_s"], 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "stage_s": report["time_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("/tmp/bench_store"))
    parser.add_argument("--halves", type=int, nargs="+", default=[48, 472], help="store sizes to train on")
    parser.add_argument("--steps", type=int, default=40, help="steps of the SDVC run (STaR's: a quarter)")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument("--measure", nargs=2, metavar=("GAMES", "RUN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        games, run = int(args.measure[0]), args.measure[1]
        print("RESULT " + json.dumps(measure(args.store, games, run, args.steps)), flush=True)
        return
    free = shutil.disk_usage(args.store.parent).free / 2**30
    need = max(args.halves) * SECONDS * DIM * 4 / 2**30
    print(f"store: {max(args.halves)} halves x {SECONDS} s x {DIM}-d = {need:.1f} GiB ({free:.0f} GiB free)")
    if need > 0.9 * free:
        sys.exit(f"not enough disk for {need:.1f} GiB at {args.store}; pass smaller --halves")
    games = write_store(args.store, max(args.halves))
    write_manifest(games, args.store / "games.tsv")
    results = []
    for halves in sorted(args.halves):
        for run in RUNS:
            steps = args.steps if run == "sdvc" else max(2, args.steps // 4)
            proc = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--steps", str(steps),
                                   "--measure", str(halves // 2), run], capture_output=True, text=True, cwd=REPO)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                sys.exit(f"run {run} on {halves} halves failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            results.append(json.loads(line[0][7:]))
            print(results[-1], flush=True)
    print("\n| run | halves | batch | steps | samples/s | peak RSS (MB) |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['run']} | {r['halves']} | {r['batch']} | {r['steps']} | {r['samples_per_s']} "
              f"| {r['peak_rss_mb']} |")
    if not args.keep:
        shutil.rmtree(args.store)


if __name__ == "__main__":
    main()
