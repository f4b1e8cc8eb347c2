"""How the game-level bootstrap interval of C@30 and M@30 shrinks with the number of test games (issue 10).

    .venv/bin/python bench/interval_width.py RESULTS_DIR [RESULTS_DIR ...] [--sizes 2 4 6 8 10] [--subsets 30]

Each RESULTS_DIR is the `results/` folder of a finished `results/table1.csv` run (any world size; one run per
training-set size to compare). For every `metrics/<method>/<encoder>/<variant>/spots@30.json` in it (per-half
metrics of the test games), the script draws `--subsets` random subsets of k test games for each k in `--sizes`
(all games once when k is the whole split), recomputes the table's interval on each subset exactly as `star
evaluate --bootstrap` does (`star.eval.dvc.bootstrap_ci`: games resampled with replacement, the per-half metrics
averaged, 95% percentile interval), and prints the median half-width (x100) per k, with hw * sqrt(k): constant
where the 1/sqrt(n) law holds. From the largest k it extrapolates the number of test games at which the C@30
half-width reaches `--target` (k_target = k * (hw / target)^2). Then, for every pair of runs, the paired
difference over all test games: both runs' per-half metrics averaged over the *same* resampled games, so the
games' shared difficulty cancels (the tables' intervals are each run's own): methods at their default variant,
and the variants of one method (Table 6's) with each other. No model is run: seconds of CPU.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from star.eval.bootstrap import bootstrap_means, percentile_interval
from star.eval.dvc import bootstrap_ci

METRICS = {"C@30": "CIDEr", "M@30": "METEOR"}


def half_widths(halves: list[dict], games: list[str], resamples: int, seed: int) -> dict[str, float]:
    """x100 half-width of each metric's interval over the halves of `games`."""
    keep = set(games)
    ci = bootstrap_ci([h for h in halves if h["game"] in keep], resamples, 0.95, seed)["metrics"]
    return {name: 50 * (ci[key][1] - ci[key][0]) for name, key in METRICS.items()}


def run_table(metrics_file: Path, sizes: list[int], subsets: int, resamples: int, seed: int) -> list[dict]:
    result = json.loads(metrics_file.read_text())
    halves = result["halves"]
    games = sorted({h["game"] for h in halves})
    captions = sum(h["ground_truths"] for h in halves) / len(games)
    rng = np.random.default_rng(seed)
    rows = []
    for k in sizes:
        if k > len(games):
            continue
        draws = [games] if k == len(games) else [list(rng.choice(games, k, replace=False)) for _ in range(subsets)]
        widths = [half_widths(halves, d, resamples, seed) for d in draws]
        row = {"k": k, "captions": round(k * captions), "draws": len(draws)}
        for name in METRICS:
            row[name] = float(np.median([w[name] for w in widths]))
        rows.append(row)
    return rows


def paired_difference(a: dict, b: dict, resamples: int, seed: int) -> dict[str, tuple[float, float, float]]:
    """x100 (difference, lo, hi) of a - b per metric, both averaged over the same game resamples."""
    rows_a = {(h["game"], h["half"]): h for h in a["halves"]}
    rows_b = {(h["game"], h["half"]): h for h in b["halves"]}
    keys = sorted(set(rows_a) & set(rows_b))
    table = np.array([[rows_a[k][m] - rows_b[k][m] for m in METRICS.values()] for k in keys])  # [H, M]
    means = bootstrap_means(table, [k[0] for k in keys], resamples, seed)  # [B, M]
    lo, hi = percentile_interval(means, 0.95)
    return {name: (100 * float(table[:, i].mean()), 100 * lo[i], 100 * hi[i]) for i, name in enumerate(METRICS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="results/ folders of finished table1 runs")
    parser.add_argument("--sizes", nargs="+", type=int, default=[2, 4, 6, 8, 10, 12, 16, 20])
    parser.add_argument("--subsets", type=int, default=30, help="random k-game subsets per size")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples per interval (the tables' default)")
    parser.add_argument("--target", type=float, default=5.0, help="C@30 half-width to reach")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for results in args.results:
        games = Path(results, "dataset", "games.tsv")
        splits = [line.split("\t")[1] for line in games.read_text().splitlines()[1:]] if games.is_file() else []
        n_train = splits.count("train") if splits else "?"
        for f in sorted(Path(results, "metrics").glob("*/*/*/spots@30.json")):
            method, encoder, variant = f.parts[-4:-1]
            rows = run_table(f, args.sizes, args.subsets, args.bootstrap, args.seed)
            point = json.loads(f.read_text())["metrics"]
            print(f"\n{results} {method} {encoder} {variant} ({n_train} train games; all test games: "
                  f"C@30 {100 * point['CIDEr']:.1f}, M@30 {100 * point['METEOR']:.1f}): median half-width x100")
            print("| test games | test captions | draws | C@30 hw | C@30 hw*sqrt(k) | M@30 hw | M@30 hw*sqrt(k) |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
            for r in rows:
                s = math.sqrt(r["k"])
                print(f"| {r['k']} | {r['captions']} | {r['draws']} | {r['C@30']:.2f} | {r['C@30'] * s:.1f} "
                      f"| {r['M@30']:.2f} | {r['M@30'] * s:.1f} |")
            last = rows[-1]
            need = last["k"] * (last["C@30"] / args.target) ** 2
            print(f"C@30 half-width {args.target:g} extrapolated (1/sqrt(n) from k={last['k']}): "
                  f"~{math.ceil(need)} test games")
        found = sorted(Path(results, "metrics").glob("*/*/*/spots@30.json"))
        runs = {f"{f.parts[-4]}/{f.parts[-2]}": json.loads(f.read_text()) for f in found}
        if len(runs) > 1:
            print(f"\n{results}: paired differences over all test games (x100, 95% interval)")
            print("| a - b | C@30 | M@30 |")
            print("|---|---:|---:|")
            names = sorted(runs)
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    (ma, va), (mb, vb) = a.split("/"), b.split("/")
                    if ma != mb and not va == vb == "default":
                        continue   # methods compared at their defaults, variants within a method
                    d = paired_difference(runs[a], runs[b], args.bootstrap, args.seed)
                    print(f"| {a} - {b} | " + " | ".join(f"{v:+.1f} [{lo:+.1f}, {hi:+.1f}]" for v, lo, hi in d.values())
                          + " |")


if __name__ == "__main__":
    main()
