"""Snakemake's own CPU apart from its jobs': run Snakemake with the given arguments and print both.

    python bench/snakemake_cpu.py --cores 8 results/table3.csv results/table4.csv results/table6.csv

Runs Snakemake's command line in this process, then prints the wall time, this process's CPU seconds (Snakemake:
DAG, scheduling, file checks, `benchmark:` sampling) and its waited-for children's (the jobs, and the ILP solver),
and the share of the machine's CPUs kept busy. Why: a run on a small machine is CPU-bound, so Snakemake's own CPU
is time its jobs do not get (docs/measurements.md: 64 of 1300 CPU-s of Tables 3 + 4 + 6 before profiles/default).
"""

import atexit
import resource
import sys
import time

from snakemake.cli import main

from star.resources import machine_cpus

START = time.perf_counter()


def report() -> None:
    wall = time.perf_counter() - START
    own, jobs = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    own_s, jobs_s = own.ru_utime + own.ru_stime, jobs.ru_utime + jobs.ru_stime
    print(f"snakemake_cpu: {wall:.0f} s wall, Snakemake {own_s:.1f} CPU-s, jobs {jobs_s:.1f} CPU-s, "
          f"{100 * (own_s + jobs_s) / wall:.0f}% of {machine_cpus()} CPUs busy", flush=True)


if __name__ == "__main__":
    atexit.register(report)  # Snakemake's main exits through sys.exit
    sys.argv = ["snakemake", *sys.argv[1:]]
    main()
