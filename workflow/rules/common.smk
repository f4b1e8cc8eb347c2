# Helpers every rule file uses: the validated config, the games, paths, code hashes, the `star` command.
import json
import re
import shlex
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)  # import the `star` next to this Snakefile, the code the rules run

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from star import config as star_config
from star.data.games import list_games
from star.provenance import code_hash

# Validate once (schema and cross-key rules, before any job), fill defaults from the schema; a bad key or value
# stops here with its dotted path. Whole floats become ints (`fps: 1.0` is `fps: 1`): equal settings, equal params.
_validated = star_config.validate(dict(config), where=" + ".join(map(str, workflow.configfiles)) or "config")
config.clear()
config.update(star_config.normalized(_validated))

ROOT = config["dataset"]["root"].rstrip("/")
HALVES = config["dataset"]["halves"]
GAMES = {g.id: g for g in list_games(config)}
SPLIT_IDS = {s: [g.id for g in GAMES.values() if g.split == s] for s in ("train", "valid", "test")}
SYNTHETIC = config["dataset"]["source"] == "synthetic"
PP = config["features"]["pptimesformer"]
POSITIONS = config["positions"]

# Rules run `python -m star ...` with this checkout first on the path (conda envs need not install it); without
# --sdm conda they run in the interpreter that runs Snakemake.
_PYTHON = "python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method else sys.executable
STAR = f'PYTHONPATH="{workflow.basedir}${{PYTHONPATH:+:$PYTHONPATH}}" {_PYTHON} -m star'

wildcard_constraints:
    game="|".join(map(re.escape, GAMES)) or "NO_GAMES",
    half="|".join(map(str, HALVES)),


def literal(value):
    """A param Snakemake must not format: config values hold braces, e.g. "{half}_224p.mkv"."""
    return lambda wildcards: value


def section_json(*keys):
    """A config section as canonical JSON: the param that reruns a rule when (only) its section changes."""
    node = config
    for key in keys:
        node = node[key]
    return literal(star_config.to_json(node))


def section_json_of(*sections):
    """Several top-level sections as one canonical JSON object."""
    return literal(star_config.to_json({key: config[key] for key in sections}))


def game_file(game_id, name):
    """A file inside a game's folder of the SoccerNet tree."""
    return f"{ROOT}/{GAMES[game_id].path}/{name}"


def half_file(pattern, half):
    return pattern.format(half=half)


def halves_of(split, pattern):
    """`pattern` (with {game} and {half}) for every half of every game of `split`."""
    return [pattern.format(game=g, half=h) for g in SPLIT_IDS[split] for h in HALVES]


def all_halves(pattern):
    return [pattern.format(game=g, half=h) for g in GAMES for h in HALVES]


def env(name):
    return f"../../envs/{name}.yaml"


def data_targets():
    targets = ["results/dataset/games.tsv"]
    for encoder in config["features"]["encoders"]:
        targets += all_halves(f"results/features/{encoder}/{{game}}/{{half}}.h5")
        targets.append(f"results/features/{encoder}/probe.json")
    targets += all_halves(f"results/positions/{POSITIONS['backend']}/{{game}}/{{half}}.h5")
    if SYNTHETIC:
        targets += [f"{ROOT}/splits/{split}.txt" for split in SPLIT_IDS]
        targets.append(f"results/positions/{POSITIONS['backend']}/evaluation.json")
    return targets


rule dataset_manifest:
    output:
        manifest="results/dataset/games.tsv",
    params:
        cfg=section_json_of("seed", "dataset", "world"),
        code=code_hash("star.data.manifest"),
    log:
        "results/logs/dataset_manifest.log",
    benchmark:
        "results/benchmarks/dataset_manifest.tsv"
    conda:
        env("video")
    shell:
        "{STAR} manifest --config {params.cfg:q} --out {output.manifest:q} > {log:q} 2>&1"
