"""The workflow's own hygiene: lint-clean, a log and a benchmark for every rule, GPU resources when the models run
on CUDA, Java checked before any job runs, and the `star` command's help and version."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from star import __version__
from star.cli import STAGE_COMMANDS, USER_COMMANDS, main
from tests.conftest import REPO, TINY, snakemake

TARGET_RULES = {"data", "table1", "table3", "table4", "table6", "diagnostics", "viewer", "all"}


def test_snakemake_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "Snakefile"),
                           "-d", str(REPO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_rules_are_formatted_with_snakefmt():
    pytest.importorskip("snakefmt", reason="snakefmt is in the test extra")
    files = [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]
    snakefmt = Path(sys.executable).with_name("snakefmt")  # the console script beside this Python
    proc = subprocess.run([str(snakefmt), "--check", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_every_rule_has_a_log_and_a_benchmark():
    text = "\n".join(p.read_text() for p in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))])
    blocks = re.split(r"^\s*rule (\w+):\n", text, flags=re.M)[1:]
    rules = dict(zip(blocks[::2], blocks[1::2], strict=True))
    assert "split_games" in rules and "make_table" in rules and "plot_training" in rules
    for name, body in rules.items():
        body = re.split(r"^\s*(?:rule \w+|if \w+):", body, flags=re.M)[0]
        if name in TARGET_RULES:
            continue
        assert re.search(r"^\s+log:", body, re.M) and re.search(r"^\s+benchmark:", body, re.M), name


def dry_run(tmp_path, device, *targets):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "model": {"device": device}}))
    return snakemake(tmp_path, "-n", "--", *targets).stdout


def test_gpu_rules_hold_a_gpu_only_when_the_models_run_on_cuda(tmp_path):
    model = "results/spotting/star/pptimesformer/default/model.safetensors"
    on_cuda = dry_run(tmp_path, "cuda", model)
    assert re.search(r"rule spotting_train:(?:\n    .*)*\n    resources: [^\n]*gpu=1", on_cuda)
    assert not re.search(r"rule (?!spotting_train)\w+:(?:\n    .*)*\n    resources: [^\n]*gpu=1", on_cuda)
    on_cpu = dry_run(tmp_path, "cpu", model)
    assert not re.search(r"gpu=1", on_cpu)


def test_a_missing_java_stops_the_run_before_any_job(tmp_path):
    """PATH without `java`: the table's run refuses at its start, naming the reason; nothing is computed."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for entry in Path(folder).iterdir():
            if entry.name != "java" and not (shadow / entry.name).exists():
                (shadow / entry.name).symlink_to(entry)
    work = tmp_path / "work"
    work.mkdir()
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    proc = snakemake(work, "--cores", "1", "--", "results/table1.csv", check=False, env={"PATH": str(shadow)})
    assert proc.returncode != 0
    assert "evaluate_both, evaluate_captions) needs Java" in proc.stderr and "`java` was not found" in proc.stderr
    assert not (work / "results").exists()


def test_help_groups_user_commands_apart_from_stages(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    text = capsys.readouterr().out
    users, stages = text.index("user commands:"), text.index("pipeline stages")
    for name in ("caption", "evaluate", "doctor", "download", "tables", "viewer"):
        assert name in USER_COMMANDS and users < text.index(f"  {name} ") < stages
    for name in STAGE_COMMANDS:
        assert text.index(f"  {name} ") > stages


def test_version_and_defaults_in_help(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"star {__version__}"
    try:
        main(["viewer", "--help"])
    except SystemExit:
        pass
    assert "(default: {half}_224p.mkv)" in " ".join(capsys.readouterr().out.split())
