"""The SLURM workflow profile (profiles/slurm), run on the tiny world against stand-in SLURM commands (tests/slurm)."""

import json
import os
import re
import shlex
import sys
from collections import Counter

import pytest
import yaml

from star import config as star_config
from star import resources as star_resources
from star.data.cache import cache_attrs
from star.data.games import list_games
from tests.conftest import REPO, TINY, snakemake

PROFILE = REPO / "profiles/slurm"
GPU_RULES = {"encoder_finetune", "features_extract", "spotting_train", "captioning_train"}
CLUSTER = {"partitions": {"main": {"default": True, "gpus": 0}, "cpu": {"default": False, "gpus": 0},
                          "gpu": {"default": False, "gpus": 2}},
           "accounts": ["star", "other"]}
USER_ENV = {"STAR_SLURM_PARTITION": "cpu", "STAR_SLURM_ACCOUNT": "star", "STAR_SLURM_GPU_PARTITION": "gpu",
            "STAR_SLURM_GPU_MODEL": ""}  # empty: any GPU
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1")


def fake_cluster(work):
    """Environment that puts the stand-in SLURM first on PATH, with its state under `work`."""
    state = work / "fake_slurm"
    state.mkdir(parents=True)
    (state / "cluster.json").write_text(json.dumps(CLUSTER))
    path = os.pathsep.join([str(REPO / "tests/slurm"), os.path.dirname(sys.executable), os.environ["PATH"]])
    return state, {"PATH": path, "FAKE_SLURM_DIR": str(state)}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def rule_of(submission) -> str:
    """The rule of an sbatch call, from the comment the plugin gives it (`rule_<name>[_wildcards_...]`)."""
    return re.match(r"rule_(.+?)(_wildcards_.*)?$", submission["options"]["comment"]).group(1)


def job_counts(output: str) -> Counter:
    """rule -> jobs, from the `Job stats` table Snakemake prints before running."""
    table = re.search(r"Job stats:\n(.*?)\n\n", output, re.S).group(1)
    rows = [line.split() for line in table.splitlines()[2:]]
    return Counter({row[0]: int(row[1]) for row in rows if len(row) == 2 and row[0] != "total"})


def profile_value(rule: str, key: str):
    """A resource of `rule` as the profile sets it, on the first attempt."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    expr = profile["set-resources"].get(rule, {}).get(key, profile["default-resources"][key])
    return eval(str(expr), {"attempt": 1})


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    """The tiny world's first train half up to its features (world, decode, fine-tune, extract) through the profile."""
    work = tmp_path_factory.mktemp("slurm")
    quick_finetune = {"pptimesformer": {"finetune": {"steps": 2, "batch_size": 4}}}
    tiny = {**TINY, "dataset": {"halves": [1]}, "features": quick_finetune}
    (work / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    train = next(g.id for g in list_games(star_config.load(REPO / "config.yaml", work / "tiny.yaml"))
                 if g.split == "train")
    target = f"results/features/pptimesformer/{train}/1.h5"
    state, env = fake_cluster(work)
    proc = snakemake(work, "--workflow-profile", str(PROFILE), "--executor", "slurm", *FAST_POLLING, target,
                     env={**env, **USER_ENV})
    return {"work": work, "train": train, "target": target, "output": proc.stdout + proc.stderr,
            "sbatch": read_jsonl(state / "sbatch.jsonl"), "srun": read_jsonl(state / "srun.jsonl"),
            "jobs": [json.loads(p.read_text()) for p in (state / "jobs").glob("*.json")]}


def test_every_job_is_an_sbatch_job_with_its_own_srun_step(slurm_run):
    submitted = Counter(rule_of(s) for s in slurm_run["sbatch"])
    assert submitted == job_counts(slurm_run["output"])
    assert set(submitted) == {"world_synthesize", "video_decode", "encoder_finetune", "features_extract"}
    assert [j["state"] for j in slurm_run["jobs"]] == ["COMPLETED"] * sum(submitted.values())
    assert sorted(int(s["job"]) for s in slurm_run["srun"]) == sorted(j["id"] for j in slurm_run["jobs"])
    assert cache_attrs(slurm_run["work"] / slurm_run["target"])["game"] == slurm_run["train"]


def test_partition_and_account_come_from_the_environment(slurm_run):
    for s in slurm_run["sbatch"]:
        opts = s["options"]
        want = USER_ENV["STAR_SLURM_GPU_PARTITION" if rule_of(s) in GPU_RULES else "STAR_SLURM_PARTITION"]
        assert (opts["partition"], opts["account"]) == (want, USER_ENV["STAR_SLURM_ACCOUNT"]), rule_of(s)


def test_only_the_gpu_rules_ask_for_a_gpu(slurm_run):
    for s in slurm_run["sbatch"]:
        gpu = rule_of(s) in GPU_RULES
        assert s["options"]["gpus"] == ("1" if gpu else None) and s["options"]["gres"] is None, rule_of(s)
    steps = {int(s["job"]): s["options"] for s in slurm_run["srun"]}
    for s in slurm_run["sbatch"]:
        assert ("--gpus=1" in steps[s["id"]]) == (rule_of(s) in GPU_RULES), rule_of(s)


def rule_memory(work, rule: str) -> int:
    """A rule's mem_mb on the first attempt (star.resources; these rules' figures do not depend on input sizes)."""
    return star_resources.mem_mb(rule, star_config.load(REPO / "config.yaml", work / "tiny.yaml"), {})


def test_memory_is_the_rules_and_time_the_profiles(slurm_run):
    for s in slurm_run["sbatch"]:
        rule = rule_of(s)
        assert int(s["options"]["mem"]) == rule_memory(slurm_run["work"], rule), rule
        assert int(s["options"]["time"]) == profile_value(rule, "runtime"), rule
        assert s["options"]["cpus_per_task"] >= 1 and s["options"]["export"] == "ALL"
        assert shlex.split(s["options"]["wrap"])[1:3] == ["-m", "snakemake"], rule  # `<python> -m snakemake ...`


def test_unset_variables_fall_back_to_the_default_partition_and_no_account(slurm_run, monkeypatch):
    for name in ("STAR_SLURM_PARTITION", "STAR_SLURM_ACCOUNT", "STAR_SLURM_GPU_PARTITION", "STAR_SLURM_GPU_MODEL"):
        monkeypatch.delenv(name, raising=False)
    work = slurm_run["work"]
    state, env = fake_cluster(work / "unset")
    snakemake(work, "--workflow-profile", str(PROFILE), "--executor", "slurm", *FAST_POLLING,
              "results/dataset/games.tsv", env=env)
    (only,) = read_jsonl(state / "sbatch.jsonl")
    assert rule_of(only) == "dataset_manifest"
    assert only["options"]["partition"] == "main" and only["options"]["account"] is None
    assert (int(only["options"]["mem"]), int(only["options"]["time"])) == (rule_memory(work, "dataset_manifest"),
                                                                           profile_value("dataset_manifest", "runtime"))
    assert (work / "results/dataset/games.tsv").is_file()
