"""A stand-in SLURM cluster for testing the Snakemake SLURM profile on one machine.

Each command (sbatch, squeue, sacct, sinfo, scontrol, sacctmgr, srun, scancel) is a small wrapper in this folder
that calls this file with its name. State lives in $FAKE_SLURM_DIR:
  cluster.json   partitions {name: {"default": bool, "gpus": int}} and accounts [names]; absent: one CPU partition
                 `main` (default), one GPU partition `gpu`, account `star`
  sbatch.jsonl   one line per submission: job id, full argv, parsed options, the job script
  srun.jsonl     one line per job step: argv and the job it ran in
  jobs/<id>.json a job's record (name, partition, account, state, exit code)
`sbatch` runs the job synchronously (the job is finished when sbatch returns its id), rejecting what a real
cluster rejects here: unknown partitions and accounts, GPUs on a partition without any, arrays (unsupported).
"""

import argparse
import fcntl
import json
import os
import re
import subprocess
import sys
from pathlib import Path

DEFAULT_CLUSTER = {"partitions": {"main": {"default": True, "gpus": 0}, "gpu": {"default": False, "gpus": 4}},
                   "accounts": ["star"]}


def state_dir() -> Path:
    path = os.environ.get("FAKE_SLURM_DIR")
    if not path:
        sys.exit("fake slurm: set FAKE_SLURM_DIR to the folder that holds the fake cluster's state")
    (Path(path) / "jobs").mkdir(parents=True, exist_ok=True)
    return Path(path)


def cluster() -> dict:
    path = state_dir() / "cluster.json"
    return json.loads(path.read_text()) if path.exists() else DEFAULT_CLUSTER


def append_jsonl(name: str, record: dict):
    with open(state_dir() / name, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # the plugin submits from two threads at once
        f.write(json.dumps(record) + "\n")


def next_job_id() -> int:
    with open(state_dir() / "last_job_id", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        job_id = int(f.read().strip() or 1000) + 1
        f.seek(0)
        f.truncate()
        f.write(str(job_id))
    return job_id


def jobs() -> list[dict]:
    records = [json.loads(p.read_text()) for p in (state_dir() / "jobs").glob("*.json")]
    return sorted(records, key=lambda r: r["id"])


def save_job(record: dict):
    path = state_dir() / "jobs" / f"{record['id']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.rename(path)  # squeue/sacct never read a half-written record


# --- sbatch -------------------------------------------------------------------------------------------------------

def sbatch_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sbatch", allow_abbrev=False)
    for flags, kw in [
        (("--parsable",), dict(action="store_true")),
        (("-J", "--job-name"), {}), (("-o", "--output"), {}), (("-e", "--error"), {}),
        (("--export",), {}), (("--comment",), {}), (("-A", "--account"), {}), (("-p", "--partition"), {}),
        (("-t", "--time"), {}), (("--mem",), {}), (("--mem-per-cpu",), {}), (("-n", "--ntasks"), dict(type=int)),
        (("-c", "--cpus-per-task"), dict(type=int)), (("--cpus-per-gpu",), dict(type=int)),
        (("--ntasks-per-gpu",), dict(type=int)), (("-G", "--gpus"), {}), (("--gres",), {}),
        (("-N", "--nodes"), {}), (("-C", "--constraint"), {}), (("--qos",), {}), (("-M", "--clusters"), {}),
        (("--reservation",), {}), (("--exclude",), {}), (("--array",), {}), (("-D", "--chdir"), {}),
        (("--wrap",), {}), (("--requeue",), dict(action="store_true")), (("--no-requeue",), dict(action="store_true")),
    ]:
        p.add_argument(*flags, **kw)
    p.add_argument("script", nargs="?")
    return p


def gpu_count(opts) -> int:
    """GPUs asked for by --gpus=[type:]n or --gres=gpu[:type]:n."""
    if opts.gpus:
        return int(opts.gpus.rsplit(":", 1)[-1])
    if opts.gres and opts.gres.startswith("gpu"):
        last = opts.gres.rsplit(":", 1)[-1]
        return int(last) if last.isdigit() else 1
    return 0


def rejection(opts, partitions: dict, accounts: list) -> str | None:
    """Why a real cluster would refuse this submission, or None."""
    if opts.array:
        return "the fake cluster does not run job arrays"
    if opts.wrap and opts.script:
        return "script arguments not permitted with --wrap option"
    if opts.partition not in partitions:
        return f"invalid partition specified: {opts.partition}"
    if opts.account is not None and opts.account not in accounts:
        return "Batch job submission failed: Invalid account or account/partition combination specified"
    if gpu_count(opts) > partitions[opts.partition].get("gpus", 0):
        return "Batch job submission failed: Requested node configuration is not available"
    return None


def job_script(opts) -> str:
    if opts.wrap is not None:
        return f"#!/bin/sh\n{opts.wrap}\n"
    if opts.script in (None, "-", "/dev/stdin"):
        return sys.stdin.read()
    return Path(opts.script).read_text()


def job_environment(job: dict, opts) -> dict:
    """What SLURM puts in a batch job's environment (on top of --export=ALL)."""
    env = dict(os.environ)
    env.update(SLURM_JOB_ID=str(job["id"]), SLURM_JOBID=str(job["id"]), SLURM_JOB_NAME=job["name"],
               SLURM_JOB_PARTITION=job["partition"], SLURM_SUBMIT_DIR=os.getcwd(), SLURM_NTASKS=str(opts.ntasks or 1),
               SLURM_CPUS_PER_TASK=str(opts.cpus_per_task or 1), SLURM_CLUSTER_NAME="fake")
    if job["account"]:
        env["SLURM_JOB_ACCOUNT"] = job["account"]
    if job["gpus"]:
        env["SLURM_GPUS"] = str(job["gpus"])
    return env


def log_path(pattern: str | None, job_id: int, workdir: Path) -> Path:
    name = (pattern or "slurm-%j.out").replace("%j", str(job_id)).replace("%A", str(job_id))
    return workdir / name


def sbatch(argv: list[str]) -> int:
    opts = sbatch_parser().parse_args(argv)
    script = job_script(opts)
    job_id = next_job_id()
    append_jsonl("sbatch.jsonl", {"id": job_id, "argv": argv, "options": vars(opts), "script": script})
    spec = cluster()
    partitions = spec["partitions"]
    if opts.partition is None:
        opts.partition = next((n for n, p in partitions.items() if p.get("default")), None)
    why = rejection(opts, partitions, spec["accounts"])
    if why:
        print(f"sbatch: error: {why}", file=sys.stderr)
        return 1
    job = {"id": job_id, "name": opts.job_name or "sbatch", "partition": opts.partition, "account": opts.account,
           "gpus": gpu_count(opts), "state": "RUNNING", "exit_code": None}
    save_job(job)
    workdir = Path(opts.chdir or ".")
    out = log_path(opts.output, job_id, workdir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as log:
        done = subprocess.run(["/bin/sh", "-s"], input=script, text=True, cwd=workdir, stdout=log,
                              stderr=subprocess.STDOUT, env=job_environment(job, opts))
    job.update(state="COMPLETED" if done.returncode == 0 else "FAILED", exit_code=done.returncode)
    save_job(job)
    print(job_id if opts.parsable else f"Submitted batch job {job_id}")
    return 0


# --- status and cluster queries -----------------------------------------------------------------------------------

def field_value(job: dict, name: str) -> str:
    """One sacct/squeue column of a job."""
    name = name.lower()
    if name in ("jobidraw", "jobid"):
        return str(job["id"])
    if name in ("state",):
        return job["state"]
    if name == "account":
        return job["account"] or ""
    if name == "partition":
        return job["partition"]
    if name == "jobname":
        return job["name"]
    if name == "exitcode":
        return f"{job['exit_code'] or 0}:0"
    if name == "reason":
        return "None" if job["state"] != "FAILED" else "NonZeroExitCode"
    if name == "nodelist":
        return "localhost"
    return ""


def selected_jobs(names: str | None, ids: str | None) -> list[dict]:
    wanted_ids = {i.split(".")[0] for i in ids.split(",")} if ids else None  # "123.0" is step 0 of job 123
    return [j for j in jobs() if (names is None or j["name"] in names.split(","))
            and (wanted_ids is None or str(j["id"]) in wanted_ids)]


def sacct(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="sacct", allow_abbrev=False)
    for flag in ("-X", "--allocations", "--parsable2", "-n", "--noheader"):
        p.add_argument(flag, action="store_true")
    for flags in (("-o", "--format"), ("--name",), ("-j", "--jobs"), ("-u", "--user"), ("-M", "--clusters"),
                  ("-S", "--starttime"), ("-E", "--endtime")):
        p.add_argument(*flags)
    opts = p.parse_args(argv)
    fields = [re.sub(r"%-?\d+$", "", f) for f in (opts.format or "JobID,State").split(",")]
    sep = "|" if opts.parsable2 else " "
    if not (opts.n or opts.noheader):
        print(sep.join(fields))
    for job in selected_jobs(opts.name, opts.jobs):
        print(sep.join(field_value(job, f) for f in fields))
    return 0


def squeue(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="squeue", allow_abbrev=False, add_help=False)
    p.add_argument("-o", "--format", default="%i %T")
    p.add_argument("-t", "--states")
    p.add_argument("-h", "--noheader", action="store_true")
    p.add_argument("-n", "--name")
    p.add_argument("-j", "--jobs")
    opts = p.parse_args(argv)
    codes = {"i": "JobId", "T": "State", "j": "JobName", "P": "Partition", "a": "Account"}
    for job in selected_jobs(opts.name, opts.jobs):
        if opts.states != "all" and job["state"] not in ("PENDING", "RUNNING"):
            continue  # like a real squeue, finished jobs leave the queue
        print(re.sub(r"%(\w)", lambda m, job=job: field_value(job, codes.get(m.group(1), "")), opts.format))
    return 0


def sinfo(argv: list[str]) -> int:
    partitions = cluster()["partitions"]
    print("PARTITION")
    for name, spec in partitions.items():
        print(name + ("*" if spec.get("default") else ""))
    return 0


def scontrol(argv: list[str]) -> int:
    if argv[:2] == ["show", "config"]:
        print("ClusterName             = fake\nMaxArraySize            = 1001\nMinJobAge               = 300 sec")
        return 0
    if argv[:2] == ["show", "partition"]:
        for name, spec in cluster()["partitions"].items():
            print(f"PartitionName={name}\n   Default={'YES' if spec.get('default') else 'NO'} MaxTime=UNLIMITED"
                  f" MaxNodes=UNLIMITED\n   TRES=cpu=16,mem=64000M,node=1"
                  + (f",gres/gpu={spec['gpus']}" if spec.get("gpus") else "") + "\n")
        return 0
    print(f"scontrol: fake cluster does not answer: {' '.join(argv)}", file=sys.stderr)
    return 1


def sacctmgr(argv: list[str]) -> int:
    # `sacctmgr -n -s list user <user> format=account%N`: the accounts this user may charge
    if "list" in argv and "user" in argv:
        for account in cluster()["accounts"]:
            print(f"  {account}")
        return 0
    print(f"sacctmgr: fake cluster does not answer: {' '.join(argv)}", file=sys.stderr)
    return 1


def srun(argv: list[str]) -> int:
    """Run a job step: drop srun's own options and exec the command."""
    takes_value = {"-n", "-c", "-N", "-G", "-J", "--jobid", "--mem", "--mem-per-cpu", "--gpus", "--ntasks",
                   "--cpus-per-task", "--nodes"}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in takes_value else 1
    append_jsonl("srun.jsonl", {"job": os.environ.get("SLURM_JOB_ID"), "argv": argv, "options": argv[:i]})
    os.execvp(argv[i], argv[i:])


def scancel(argv: list[str]) -> int:
    ids = {a for a in argv if a.isdigit()}
    for job in jobs():
        if str(job["id"]) in ids and job["state"] in ("PENDING", "RUNNING"):
            save_job({**job, "state": "CANCELLED"})
    return 0


COMMANDS = {f.__name__: f for f in (sbatch, sacct, squeue, sinfo, scontrol, sacctmgr, srun, scancel)}

if __name__ == "__main__":
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
