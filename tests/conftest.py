import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# The smallest world the workflow tests run: one game per split, one-minute halves.
TINY = {
    "world": {"games": {"train": 1, "valid": 1, "test": 1}, "half_duration_s": 60, "event_interval_s": 15},
    "features": {"pptimesformer": {"finetune": {"steps": 10, "batch_size": 8}}},
}


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow and package, for tests that edit code."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml", "workflow", "star", "envs", "profiles"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args, snakefile: Path | None = None, check=True, env=None):
    """Run snakemake on `workdir` with the repo config plus `workdir/tiny.yaml`."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile or REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str((snakefile.parent if snakefile else REPO) / "config.yaml"), str(workdir / "tiny.yaml"),
           *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: intra-op threads only add synchronisation (badly so on a busy 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A workflow directory where `snakemake data` has run on the tiny world (shared by the workflow tests)."""
    work = tmp_path_factory.mktemp("tiny")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    snakemake(work, "--cores", "2", "data")
    return work
