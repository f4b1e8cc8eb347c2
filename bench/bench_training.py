"""Training throughput on a SoccerNet-shaped store: loader, model and full-step samples/s and peak memory, per
method and variant, at two store sizes.

    python bench/bench_training.py --store /tmp/bench_store --halves 48 472 [--runs all] [--batches 40] [--keep]
    python bench/bench_training.py --store /tmp/bench_store --halves 48 --loss-check     # float16 vs float32

Writes a synthetic store of `max(--halves)` halves of 2700 s x 8576-d float32 features at 1 fps (SoccerNet's
Baidu features: 942 halves, 87 GB; one half is 92 MB), a manifest and labels with 39 annotations per half. Then,
for each store size and run, in a fresh process (1 torch thread, batch 8, model.cache_mb 1024, the `tiny` preset,
standardised with the first half's statistics), it measures three things, interleaved, three rounds, and prints
the median of each:

- loader: batches drawn from the training DataLoader (the real datasets, sampler and Collate), nothing else;
- model: forward + backward + AdamW step on one batch reused (the model's own cost);
- full: both, as `star.train.loop.fit` runs them, over as many batches as a loader round (40: about one block of
  halves of the grouped sampler, so each round pays the half reads an epoch pays, not more or fewer);

each as samples per second of wall time and per second of the process's CPU time (the latter is what a shared
machine's other jobs disturb least: with workers 0 every part of the step runs in this process);

and the process's peak resident memory (getrusage). Every round draws fresh batches from where the last stopped,
so half reads (LRU misses) are part of the loader's figure as they come in an epoch's first batches.

Runs (the issue-14 table's rows): STaR spotter and captioner with global features (variant `nopos`: the store has
no positions), with batches drawn uniformly (`uniform`) and grouped one half a batch (`halves_per_batch` 1), STaR's
captioner without global features, Delta's captioner, SDVC's spotter. `--loss-check` trains STaR's spotter and
captioner for a few steps from one seed on the same batches with the global features stored in float32 and in
float16, and prints both loss curves and their largest difference.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from star.data.games import Game, read_manifest, write_manifest  # noqa: E402

SECONDS, DIM, BATCH = 2700, 8576, 8
RUNS = {  # name: (stage, method, variant, halves_per_batch)
    "star_spot_global_uniform": ("spotting", "star", "nopos", 0),
    "star_spot_global_grouped": ("spotting", "star", "nopos", 1),
    "star_cap_global_uniform": ("captioning", "star", "nopos", 0),
    "star_cap_global_grouped": ("captioning", "star", "nopos", 1),
    "star_cap_noglobal": ("captioning", "star", "noglobal-nopos", 0),
    "delta_cap": ("captioning", "delta", "default", 0),
    "sdvc_spot": ("spotting", "sdvc", "default", 0),
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
    """`halves` halves (2 per game): all train but the last 2 games (valid). Halves are copies of one random
    block, rolled and offset per half (writing stays at disk speed; random floats do not compress)."""
    rng = np.random.default_rng(seed)
    block = rng.standard_normal((SECONDS, DIM), dtype=np.float32)
    n_games = halves // 2
    games = [Game(f"game{i:04d}", f"bench/{i:04d}", "valid" if i >= n_games - 2 else "train") for i in range(n_games)]
    started = time.perf_counter()
    for i, game in enumerate(games):
        labels = [{"gameTime": f"{h} - {s // 60:02d}:{s % 60:02d}", "label": "comments",
                   "anonymized": "[TEAM] attack down the left, [PLAYER] crosses but the keeper claims it."}
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


def setup(store: Path, games: int, run: str, global_dtype: str = "float32", workers: int = 0,
          block: int | None = None):
    """(model, loss function, batch iterator) of one run on the first `games` train games; `block`: halves per
    block of the grouped sampler (default: what the store holds)."""
    import torch

    from star.data.datasets import CaptioningDataset, Collate, HalfGroups, SpottingDataset, block_halves
    from star.data.halves import CacheReader, keep_freed_memory
    from star.model_file import build_model, model_inputs
    from star.train.common import (caption_tokenizer, feature_statistics, load_halves, method_config, n_classes,
                                   read_config)
    from star.train.loop import captioning_loss, loader, spotting_loss, step_batches

    stage, method, variant, per_batch = RUNS[run]
    keep_freed_memory()  # as `star spotting-train` / `captioning-train` do
    cfg = read_config(json.dumps({"model": {"cache_mb": 1024, "global_dtype": global_dtype}}))
    train_games = [g for g in read_manifest(store / "games.tsv") if g.split == "train"][:games]
    halves = load_halves(train_games, [1, 2], store / "features", None, store / "world", "Labels-caption.json")
    model_cfg = method_config(cfg, method, variant)
    inputs = model_inputs(model_cfg, halves[0].fps, stage)
    inputs.mean, inputs.std = feature_statistics(halves[:1])
    reader = CacheReader(1024, global_stride=getattr(model_cfg, "global_stride", 1), global_dtype=global_dtype)
    if stage == "spotting":
        data = SpottingDataset(halves, inputs, cfg["spotting"]["radius_s"],
                               cfg["spotting"]["negatives_per_positive"], reader)
        tokenizer, loss = None, spotting_loss
    else:
        data = CaptioningDataset(halves, inputs, reader=reader)
        tokenizer = caption_tokenizer(method, model_cfg, data.captions, cfg)
        loss = captioning_loss
    if per_batch:
        data.groups = HalfGroups(per_batch, block or block_halves(reader, halves))
    torch.manual_seed(0)
    model = build_model(stage, method, model_cfg, DIM, tokenizer, n_classes(cfg)).train()
    batches = loader(data, Collate(tokenizer, 70), step_batches(data, BATCH, seed=0), workers, torch.device("cpu"))
    return model, loss, iter(batches), len(halves)


def measure(store: Path, games: int, run: str, batches: int, workers: int) -> dict:
    """Loader, model and full samples/s (median of 3 interleaved rounds) and peak RSS of one run."""
    import torch

    torch.set_num_threads(1)
    model, loss_fn, data, n_halves = setup(store, games, run, workers=workers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch):
        loss = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    reused = next(data)
    step(reused)  # warm-up
    model_steps = max(3, batches // 4)
    rates = {k: [] for k in ("loader", "model", "full", "loader_cpu", "model_cpu", "full_cpu")}

    def timed(name, count, work):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            work()
        rates[name].append(count * BATCH / (time.perf_counter() - wall))
        rates[name + "_cpu"].append(count * BATCH / (time.process_time() - cpu))

    for _ in range(3):
        timed("loader", batches, lambda: next(data))
        timed("model", model_steps, lambda: step(reused))
        timed("full", batches, lambda: step(next(data)))  # as many batches as the loader's round: a block of halves
    out = {"run": run, "halves": n_halves, "batch": BATCH, "workers": workers}
    out |= {k: round(statistics.median(v), 1) for k, v in rates.items()}
    out |= {f"{k}_runs": [round(x, 1) for x in v] for k, v in rates.items()}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def loss_check(store: Path, games: int, steps: int) -> dict:
    """Loss curves of STaR's spotter and captioner trained from one seed on the same batches, global features
    stored in float32 and in float16."""
    import torch

    torch.set_num_threads(1)
    out = {}
    for run in ("star_spot_global_grouped", "star_cap_global_grouped"):
        curves = {}
        for dtype in ("float32", "float16"):
            model, loss_fn, data, _ = setup(store, games, run, dtype, block=8)  # the same batches for both
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            model.eval()  # no dropout: the curves differ only by the stored precision
            curve = []
            for _ in range(steps):
                loss = loss_fn(model, next(data))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                curve.append(round(float(loss), 5))
            curves[dtype] = curve
        diff = max(abs(a - b) for a, b in zip(curves["float32"], curves["float16"], strict=True))
        out[run] = {**curves, "max_abs_diff": round(diff, 5)}
    return out


def child(args, *extra) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--store", str(args.store), "--batches", str(args.batches),
                           "--workers", str(args.workers), *extra], capture_output=True, text=True, cwd=REPO)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        sys.exit(f"{' '.join(extra)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[0][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("/tmp/bench_store"))
    parser.add_argument("--halves", type=int, nargs="+", default=[48, 472], help="store sizes (train halves + 4)")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--batches", type=int, default=40,
                        help="loader and full-step batches a round (model-only steps: a quarter)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--loss-check", action="store_true", help="float16 vs float32 loss curves (20 steps)")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument("--measure", nargs=2, metavar=("GAMES", "RUN"), help=argparse.SUPPRESS)
    parser.add_argument("--loss-games", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        result = measure(args.store, int(args.measure[0]), args.measure[1], args.batches, args.workers)
        print("RESULT " + json.dumps(result), flush=True)
        return
    if args.loss_games:
        print("RESULT " + json.dumps(loss_check(args.store, args.loss_games, 20)), flush=True)
        return
    args.store.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(args.store).free / 2**30
    written = len(list((args.store / "features").glob("*/*.h5"))) if (args.store / "features").is_dir() else 0
    need = max(0, max(args.halves) - written) * SECONDS * DIM * 4 / 2**30  # what is not written yet
    print(f"store: {max(args.halves)} halves x {SECONDS} s x {DIM}-d = {need:.1f} GiB ({free:.0f} GiB free)")
    if need > 0.9 * free:
        sys.exit(f"not enough disk for {need:.1f} GiB at {args.store}; pass smaller --halves")
    games = write_store(args.store, max(args.halves))
    manifest = args.store / "games.tsv"
    if not manifest.is_file() or read_manifest(manifest) != games:  # runs under way may be reading it
        write_manifest(games, manifest)
    try:
        if args.loss_check:
            print(json.dumps(child(args, "--loss-games", str(min(args.halves) // 2 - 2)), indent=1))
            return
        results = []
        for halves in sorted(args.halves):
            for run in args.runs:
                results.append(child(args, "--measure", str(halves // 2 - 2), run))
                print(results[-1], flush=True)
        print("\n| run | train halves | loader | model | full | loader / CPU-s | model / CPU-s | full / CPU-s | "
              "peak RSS (MB) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['run']} | {r['halves']} | {r['loader']} | {r['model']} | {r['full']} | {r['loader_cpu']} | "
                  f"{r['model_cpu']} | {r['full_cpu']} | {r['peak_rss_mb']} |")
    finally:
        if not args.keep:
            shutil.rmtree(args.store)


if __name__ == "__main__":
    main()
