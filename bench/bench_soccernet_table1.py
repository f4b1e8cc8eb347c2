"""Table 1 from a SoccerNet-format tree with Baidu-shaped features and full-length halves: does it complete with
`snakemake --cores 8` on this machine, in what time and peak memory.

    python bench/bench_soccernet_table1.py [--seconds 2700] [--work /tmp/star_sn_table1] [--steps 3] [--keep]

Builds the SoccerNet-format fixture of tests/test_soccernet_tree.py (three games: train, valid, test; real folder
names, Labels-caption.json, `{half}_baidu_soccer_embeddings.npy` of 8576-d 1-fps features, Game State predictions
JSON, game lists; no videos) with `--seconds`-long halves, then runs `snakemake --cores 8 results/table1.csv` on a
copy of this checkout with `--steps` training steps per model (the models' quality is not the point; inference
scores every second of the full-length test halves). Samples the summed resident memory of the Snakemake process
tree every second and prints the wall time, that peak, and each rule's largest `max_rss` from the benchmark files.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def tree_rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=2700, help="length of every half")
    parser.add_argument("--work", type=Path, default=Path("/tmp/star_sn_table1"))
    parser.add_argument("--steps", type=int, default=3, help="training steps of each model")
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--mem-mb", type=int, help="Snakemake's memory budget (default: this machine's memory)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import tests.test_soccernet_tree as fixture
    from tests.conftest import copy_workflow

    fixture.HALF_S = args.seconds  # the fixture's writers read it
    shutil.rmtree(args.work, ignore_errors=True)
    root, work = args.work / "SoccerNet", args.work / "work"
    work.mkdir(parents=True)
    snakefile = copy_workflow(args.work / "workflow") / "Snakefile"
    config = fixture.build_tree(root, work)
    train = {"steps": args.steps, "batch_size": 8, "eval_every": args.steps, "checkpoint_every": args.steps,
             "warmup_steps": 1, "max_valid_samples": 16}
    config |= {"spotting": {"train": train}, "captioning": {"train": train, "beam_size": 2, "max_tokens": 12}}
    (work / "tiny.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(work), "--configfile",
           str(snakefile.parent / "config.yaml"), str(work / "tiny.yaml"), "--cores", str(args.cores),
           *(["--resources", f"mem_mb={args.mem_mb}"] if args.mem_mb else []), "--", "results/table1.csv"]
    print(" ".join(cmd), flush=True)
    started = time.perf_counter()
    with open(args.work / "snakemake.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        peak = [0.0]

        def sample():
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss_mb(proc.pid))
                time.sleep(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        sampler.join()
    wall = time.perf_counter() - started
    print(f"snakemake exit {code}, wall {wall / 60:.1f} min, peak summed RSS of its process tree {peak[0]:.0f} MB")
    per_rule = {}
    for tsv in (work / "results/benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(work / "results/benchmarks").parts[0].removesuffix(".tsv")
        row = next(csv.DictReader(tsv.open(), delimiter="\t"))
        per_rule[rule] = max(per_rule.get(rule, 0.0), float(row["max_rss"]))
    for rule, rss in sorted(per_rule.items()):
        print(f"  {rule}: largest max_rss {rss:.0f} MB")
    if code:
        print((args.work / "snakemake.log").read_text()[-3000:])
    elif (work / "results/table1.csv").is_file():
        print((work / "results/table1.csv").read_text())
    if not args.keep:
        shutil.rmtree(args.work)
    sys.exit(code)


if __name__ == "__main__":
    main()
