# Helpers of the workflow (the other .smk files hold only rules): the validated config, the games, paths, code hashes,
# the `star` command, GPU resources, the Java check, then each stage family's input and argument functions.
import json
import re
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(
    0, workflow.basedir
)  # import the `star` next to this Snakefile, the code the rules run

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from star import config as star_config
from star import registry
from star import resources as star_resources
from star.data.games import list_games
from star.provenance import code_hash, method_code
from star.provenance import stage_code as train_code
from star.device import cuda_jobs, local_gpus

# Validate once (schema and cross-key rules, before any job), fill defaults from the schema; a bad key or value
# stops here with its dotted path. Whole floats become ints (`fps: 1.0` is `fps: 1`): equal settings, equal params.
_validated = star_config.validate(
    dict(config), where=" + ".join(map(str, workflow.configfiles)) or "config"
)
config.clear()
config.update(star_config.normalized(_validated))

ROOT = config["dataset"]["root"].rstrip("/")
HALVES = config["dataset"]["halves"]
GAMES = {g.id: g for g in list_games(config)}
SPLIT_IDS = {
    s: [g.id for g in GAMES.values() if g.split == s]
    for s in ("train", "valid", "test")
}
SYNTHETIC = registry.dataset(config["dataset"]["source"]).synthetic
PP = config["features"]["pptimesformer"]
POSITIONS = config["positions"]

# Rules call `star <command>`: a shell function that runs `python -m star` with this checkout first on the path
# (conda envs need not install it); without --sdm conda, in the interpreter that runs Snakemake.
_PYTHON = (
    "python"
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else sys.executable
)
_PREFIX = (
    f'set -euo pipefail; star() {{ PYTHONPATH={shlex.quote(workflow.basedir)}"${{PYTHONPATH:+:$PYTHONPATH}}"'
    f' {shlex.quote(_PYTHON)} -m star "$@"; }}; '
)
shell.prefix(
    _PREFIX.replace("{", "{{").replace("}", "}}")
)  # shell.prefix formats its text like a rule's command

# GPU jobs (training, torch inference) hold `gpu=1` when the models run on CUDA (model.device `cuda`, or `auto`
# where torch sees a GPU), so `--resources gpu=N` caps how many run at once; without it, a local run is capped at
# the GPUs torch sees here (cluster jobs ask their scheduler, profiles/slurm). On CPU they hold none.
GPU = 1 if cuda_jobs(config["model"]["device"]) else 0
if (
    GPU
    and workflow.local_exec
    and "gpu" not in workflow.global_resources
    and local_gpus()
):
    workflow.register_resource("gpu", local_gpus())


onstart:
    # Java runs the evaluator's PTB tokenizer and METEOR: a missing one stops the run before any training.
    if evaluating := {
        job.rule.name
        for job in workflow.dag.needrun_jobs()
        if job.rule.name.startswith("evaluate_")
    }:
        from star.eval.java import JavaError, find_java

        try:
            find_java()
        except JavaError as exc:
            raise WorkflowError(
                f"the evaluation ({', '.join(sorted(evaluating))}) needs Java, checked before any"
                f" job runs: {exc}"
            ) from None


# Snakemake's re-planning timers would keep a finished run alive for up to 10 s (profiles/default's timespan)
onsuccess:
    star_resources.cancel_replanning()


onerror:
    star_resources.cancel_replanning()


# Local runs: at most as many threads at once as this machine has CPUs, whatever --cores asks. Single-threaded jobs
# beyond that only take turns and spend more CPU doing so: Tables 3 + 4 + 6 on 2 CPUs took 1470 CPU-s (754 s) with
# 8 jobs at once, 1290 CPU-s (652 s) with 2 (docs/measurements.md).
CORES, CPUS = workflow.global_resources.get("_cores"), star_resources.machine_cpus()
if workflow.local_exec and CORES and CORES > CPUS:
    print(
        f"star: --cores {CORES} on {CPUS} CPUs: running at most {CPUS} threads at once",
        file=sys.stderr,
    )
    workflow.register_resource("_cores", CPUS)


# Local runs: jobs start only while their mem_mb (star/resources.py) fits this machine's memory, unless
# `--resources mem_mb=N` sets another budget. Executors that submit jobs elsewhere (SLURM) are not limited here.
if workflow.local_exec and "mem_mb" not in workflow.global_resources:
    workflow.register_resource("mem_mb", star_resources.machine_mb())


def mem_mb(rule_name):
    """A rule's `resources: mem_mb`: star.resources.mem_mb from the config and the job's named inputs."""
    return lambda wildcards, input, attempt: star_resources.mem_mb(
        rule_name, config, {name: input[name] for name in input.keys()}, attempt
    )


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
    targets += all_halves(
        f"results/positions/{POSITIONS['backend']}/{{game}}/{{half}}.h5"
    )
    if SYNTHETIC:
        targets += [f"{ROOT}/splits/{split}.txt" for split in SPLIT_IDS]
        targets.append(f"results/positions/{POSITIONS['backend']}/evaluation.json")
    return targets


# --- Features ------------------------------------------------------------------------------------------------------
PP_WEIGHTS = PP["weights"] or f"results/encoder/pptimesformer_{PP['preset']}.pdparams"
IMPORTED = [
    e for e in config["features"]["encoders"] if registry.encoder(e).kind == "imported"
]
VIDEO_ENCODERS = [
    e for e in config["features"]["encoders"] if registry.encoder(e).kind == "video"
]


def encoder_module(encoder):
    """The module of a video encoder (imported by name at run time: named in the code hash)."""
    return registry.encoder(encoder).extractor.split(":")[0]


def encoder_weights(w):
    """A video encoder's weights: its section's `weights`; PP-TimesFormer's, when null, fine-tuned here."""
    if w.encoder == "pptimesformer":
        return PP_WEIGHTS
    return config["features"][w.encoder].get("weights") or []


def labels_of(split):
    """The labels file of every half of `split`, parallel to halves_of(split, ...)."""
    return [
        game_file(g, config["dataset"]["labels"])
        for g in SPLIT_IDS[split]
        for h in HALVES
    ]


def video_duration_arg(w):
    """`--video V` when the half's video is on disk: the import then checks rows / fps against its duration
    (a 2-fps file declared 1 fps is caught). A features-only SoccerNet tree has no videos: the rows must then
    reach the half's last annotation (a 1-fps file declared 2 fps is caught)."""
    video = game_file(w.game, half_file(config["dataset"]["video"], w.half))
    if Path(video).is_file():
        return f"--video {shlex.quote(video)}"
    labels = game_file(w.game, config["dataset"]["labels"])
    return f"--labels {shlex.quote(labels)}" if Path(labels).is_file() else ""


def probe_frames(split):
    """Frames caches for the probe's mean-colour baseline (pptimesformer only: imported features have none)."""

    def inputs(w):
        return (
            halves_of(split, "results/frames/{game}/{half}.h5")
            if registry.encoder(w.encoder).kind == "video"
            else []
        )

    return inputs


# --- Positions -----------------------------------------------------------------------------------------------------
from star.positions.localize import code_modules as positions_code_modules

BACKEND = POSITIONS["backend"]
FRAMES = "results/frames/{game}/{half}.h5"


def positions_inputs(w):
    if BACKEND == "classical":
        return {"frames": FRAMES.format(**w)}
    if BACKEND == "gamestate_json":
        return {
            "json": game_file(
                w.game, half_file(POSITIONS["gamestate_json"]["file"], w.half)
            )
        }
    return {
        "video": game_file(w.game, half_file(config["dataset"]["video"], w.half)),
        "frames": FRAMES.format(**w),
    }


def positions_args(w, input):
    args = {
        "classical": "--frames {frames}",
        "gamestate_json": "--game-dir {game_dir}",
        "sngamestate": "--video {video} --frames {frames} --work {work}",
    }[BACKEND]
    return args.format(
        frames=shlex.quote(str(input.get("frames", ""))),
        video=shlex.quote(str(input.get("video", ""))),
        game_dir=shlex.quote(str(Path(game_file(w.game, "")))),
        work=f"results/positions/work/{w.game}_{w.half}",
    )


# --- Spotting and the model stages ---------------------------------------------------------------------------------
from star import layout
from star.variants import parse_variant, spotting_variant, variant_name

WILDCARDS = ("method", "encoder", "variant")

METHODS = config["methods"]
METHOD_NAMES = {name: m.display for name, m in registry.METHODS.items()}
ENCODERS = config["features"]["encoders"]
TABLES = config["tables"]
TABLE_ENCODER = TABLES["encoder"] or ENCODERS[0]
LABELS = config["dataset"]["labels"]
SPOTTING_DIR, CAPTIONING_DIR = (
    f"results/{layout.MODEL_DIR.format(stage=s, **{k: f'{{{k}}}' for k in WILDCARDS})}"
    for s in ("spotting", "captioning")
)


wildcard_constraints:
    method="|".join(map(re.escape, registry.METHODS)),
    encoder="|".join(map(re.escape, ENCODERS)),
    variant="default|[a-z0-9]+(-[a-z0-9]+)*",


def stage_json(stage):
    """What a model stage reads of the config: seed, the dataset's halves and labels file, model, its section."""
    return literal(
        star_config.to_json(
            {
                "seed": config["seed"],
                "model": config["model"],
                stage: config[stage],
                "dataset": {
                    "source": config["dataset"]["source"],
                    "halves": HALVES,
                    "labels": LABELS,
                },
            }
        )
    )


def stage_code(stage):
    """Code hash of a model stage: its module and the method's model module (imported by name)."""
    return lambda w: train_code(stage, w.method)


def uses_positions(method, variant):
    """Whether the method reads positions (STaR's SSS), unless the variant drops them."""
    return registry.method(method).positions and "use_positions" not in parse_variant(
        variant
    )


def train_inputs(w):
    """Manifest, labels and caches of the train and valid splits (positions where the model reads them)."""
    games = SPLIT_IDS["train"] + SPLIT_IDS["valid"]
    files = {
        "manifest": "results/dataset/games.tsv",
        "labels": [game_file(g, LABELS) for g in games],
        "features": [
            f"results/features/{w.encoder}/{g}/{h}.h5" for g in games for h in HALVES
        ],
    }
    if uses_positions(w.method, w.variant):
        files["positions"] = [
            f"results/positions/{BACKEND}/{g}/{h}.h5" for g in games for h in HALVES
        ]
    return files


def train_args(w, input):
    positions = (
        f" --positions results/positions/{BACKEND}"
        if "positions" in input.keys()
        else ""
    )
    return (
        f"--method {w.method} --variant {w.variant} --manifest {shlex.quote(input.manifest)}"
        f" --labels-root {shlex.quote(ROOT)} --features results/features/{w.encoder}{positions}"
    )


def spotting_infer_inputs(w):
    """The spotter and every test half's caches, in the order of spotting_infer's outputs."""
    files = {
        "model": f"results/spotting/{w.method}/{w.encoder}/{w.variant}/model.safetensors",
        "features": halves_of(
            "test", f"results/features/{w.encoder}/{{game}}/{{half}}.h5"
        ),
    }
    if uses_positions(w.method, w.variant):
        files["positions"] = halves_of(
            "test", f"results/positions/{BACKEND}/{{game}}/{{half}}.h5"
        )
    return files


def spotting_infer_args(w, input):
    if "positions" not in input.keys():
        return ""
    return "--positions " + " ".join(shlex.quote(p) for p in input.positions)


# --- Captioning ----------------------------------------------------------------------------------------------------
PREDICTIONS = "results_dense_captioning.json"


def dense(method):
    """An end-to-end method (PDVC): one model, no spotter; its `spots` anchors are its own events."""
    return registry.method(method).kind == "dense"


# Table 4 and the diagnostics caption ground-truth anchors: two-stage methods only
TWO_STAGE = [m for m in METHODS if not dense(m)]


def test_predictions(directory):
    """The official predictions file of every test game under `directory` (braces escaped: a pattern)."""
    return [
        f"{directory}/{GAMES[g].path.replace('{', '{{').replace('}', '}}')}/{PREDICTIONS}"
        for g in SPLIT_IDS["test"]
    ]


def captioning_infer_inputs(w):
    """The captioner and every test game's caches (and spots or labels), game by game as the outputs."""
    if dense(w.method) and w.anchors == "gt":
        raise WorkflowError(
            f"{w.method} finds its own events: ground-truth anchors (gt) are for two-stage methods"
        )
    inputs = {
        "model": f"results/captioning/{w.method}/{w.encoder}/{w.variant}/model.safetensors",
        "features": halves_of(
            "test", f"results/features/{w.encoder}/{{game}}/{{half}}.h5"
        ),
    }
    if uses_positions(w.method, w.variant):
        inputs["positions"] = halves_of(
            "test", f"results/positions/{BACKEND}/{{game}}/{{half}}.h5"
        )
    if w.anchors == "gt":
        inputs["labels"] = [game_file(g, LABELS) for g in SPLIT_IDS["test"]]
    elif not dense(w.method):
        spotter = (
            f"results/spotting/{w.method}/{w.encoder}/{spotting_variant(w.variant)}"
        )
        inputs["spots"] = halves_of("test", f"{spotter}/spots/{{game}}/{{half}}.json")
    return inputs


def captioning_infer_args(w, input):
    quoted = lambda files: " ".join(shlex.quote(str(f)) for f in files)
    paths = [GAMES[g].path for g in SPLIT_IDS["test"]]
    args = f"--game-path {quoted(paths)} --features {quoted(input.features)}"
    if "positions" in input.keys():
        args += f" --positions {quoted(input.positions)}"
    if dense(w.method):
        return args
    return args + (
        f" --labels {quoted(input.labels)}"
        if w.anchors == "gt"
        else f" --spots {quoted(input.spots)}"
    )


# --- Evaluation and tables -----------------------------------------------------------------------------------------
ENCODER_NAMES = {name: e.display for name, e in registry.ENCODERS.items()}
YES, NO = "✓", "×"


def encoder_fps(encoder):
    fps = (
        config["decode"]["fps"]
        if registry.encoder(encoder).kind == "video"
        else config["features"]["import"][encoder]["fps"]
    )
    return f"{fps:g}"


# STaR's SSS input of the default runs; when it is the paper's (xy), Table 6 and the diagnostics add a run whose
# SSS also reads team side, role and the ball (variant `teamball`)
SSS_INPUTS = config["model"]["star"]["sss_inputs"]
EXTENDED = SSS_INPUTS == "xy"
SSS_INPUT_NAMES = {"xy": "xy", "xy_team_role_ball": "xy, team, role, ball"}


DENSE_WINDOW = 30  # the tables' caption metrics at the spots: @30


def metrics_file(method, encoder, variant, anchors, window):
    return f"results/{layout.metrics_file(method, encoder, variant, anchors, window)}"


def row_meta(w, anchors=None):
    """`star evaluate` metadata of a run: method, encoder, feature rate, anchors, and STaR's ablation switches."""
    meta = (
        f"--method {METHOD_NAMES[w.method]} --encoder {shlex.quote(ENCODER_NAMES.get(w.encoder, w.encoder))}"
        f" --fps {encoder_fps(w.encoder)} --meta anchors={anchors or w.anchors}"
    )
    if registry.method(w.method).variants:
        switches = parse_variant(w.variant)
        mark = lambda on: YES if on else NO
        meta += (
            f" --meta G.={mark(switches.get('use_global', True))}"
            f" --meta P.={mark(switches.get('use_positions', True))}"
            f" --meta SSS={mark(switches.get('use_positions', True))} --meta Blurring={switches.get('blur', 1)}"
        )
        inputs = SSS_INPUT_NAMES[switches.get("sss_inputs", SSS_INPUTS)]
        inputs = inputs if switches.get("use_positions", True) else "-"
        meta += f" --meta {shlex.quote(f'SSS inputs={inputs}')}"
    return meta


def table3_files():
    files = []
    for blur in sorted(
        TABLES["blur"], reverse=True
    ):  # the paper's order: strongest blurring first
        for positions in (False, True):
            variant = variant_name(blur=blur, use_positions=positions)
            files += [
                metrics_file("star", TABLE_ENCODER, variant, "spots", DENSE_WINDOW),
                metrics_file("star", TABLE_ENCODER, variant, "gt", "captioning"),
            ]
    return files


TABLE_FILES = {
    "table1": [
        metrics_file(m, e, "default", "spots", DENSE_WINDOW)
        for e in ENCODERS
        for m in METHODS
    ],
    "table3": table3_files(),
    "table4": [
        metrics_file(m, TABLE_ENCODER, "default", "gt", window)
        for m in TWO_STAGE
        for window in ("captioning", 5)
    ],
    "table6": [
        metrics_file(
            "star",
            TABLE_ENCODER,
            variant_name(use_global=g, use_positions=p),
            "spots",
            DENSE_WINDOW,
        )
        for p, g in ((False, False), (False, True), (True, False), (True, True))
    ]
    + (
        [
            metrics_file(
                "star",
                TABLE_ENCODER,
                variant_name(team_ball=True),
                "spots",
                DENSE_WINDOW,
            )
        ]
        if EXTENDED
        else []
    ),
}
TABLE_COLUMNS = {
    "table1": "table1",
    "table3": "Blurring,SSS,B4@30,M@30,R@30,C@30,B@4=B4@captioning,M=M@captioning,R=R-L@captioning,C=C@captioning",
    "table4": "table4",
    "table6": "table6",
}


# --- Diagnostics: every method, and STaR's Table 6 variants ------------------------------------------------------
DIAGNOSTIC_RUNS = {METHOD_NAMES[m]: (m, "default") for m in TWO_STAGE}
if "star" in METHODS:
    for _g, _p in ((False, True), (True, False), (False, False)):
        _switches = ", ".join(s for s, on in (("no G.", _g), ("no P.", _p)) if not on)
        DIAGNOSTIC_RUNS[f"STaR ({_switches})"] = (
            "star",
            variant_name(use_global=_g, use_positions=_p),
        )
    if EXTENDED:
        DIAGNOSTIC_RUNS["STaR (SSS: team, role, ball)"] = (
            "star",
            variant_name(team_ball=True),
        )


def diagnostic_dirs(anchors):
    """Run name -> its predictions folder at `anchors` (gt or spots)."""
    return {
        name: f"results/captioning/{m}/{TABLE_ENCODER}/{v}/{anchors}"
        for name, (m, v) in DIAGNOSTIC_RUNS.items()
    }


# --- One job for both anchors --------------------------------------------------------------------------------------
# A run ("<method>/<encoder>/<variant>") whose captions at the spots and at the ground truth the configured tables and
# diagnostics both need is captioned by one job (captioning_infer_both), and one whose spots@30 and gt@captioning
# metrics they both need is evaluated by one (evaluate_both): one process start, model load and METEOR JVM (~7 CPU-s)
# instead of two, even when the target asks for one of them. Rule order picks these rules; the others serve the rest.
def run_of(metrics):
    """(method, encoder, variant, anchors) of a metrics file results/metrics/<m>/<e>/<v>/<anchors>@<window>.json."""
    method, encoder, variant, name = metrics.split("/")[2:6]
    return method, encoder, variant, name.split("@")[0]


def both_anchors_runs():
    """(runs to caption at both anchors, runs to evaluate with both protocols), each a wildcard regex."""
    metrics = {f for files in TABLE_FILES.values() for f in files}
    runs = {run_of(f)[:3] for f in metrics}
    captioned = set(map(run_of, metrics)) | {
        (m, TABLE_ENCODER, v, a)
        for m, v in DIAGNOSTIC_RUNS.values()
        for a in ("gt", "spots")
    }
    infer = [r for r in runs if {(*r, "gt"), (*r, "spots")} <= captioned]
    evaluate = [
        r
        for r in runs
        if {
            metrics_file(*r, "spots", DENSE_WINDOW),
            metrics_file(*r, "gt", "captioning"),
        }
        <= metrics
    ]
    regex = (
        lambda chosen: "|".join(re.escape("/".join(r)) for r in sorted(chosen))
        or "NO_RUNS"
    )
    return regex(infer), regex(evaluate)


INFER_BOTH, EVALUATE_BOTH = both_anchors_runs()


def at_anchors(w, anchors):
    """The per-anchors wildcards (method, encoder, variant, anchors) of a both-anchors job's `run`."""
    method, encoder, variant = w.run.split("/")
    return SimpleNamespace(
        method=method, encoder=encoder, variant=variant, anchors=anchors
    )


def both_anchors_inputs(w):
    return {
        **captioning_infer_inputs(at_anchors(w, "spots")),
        **captioning_infer_inputs(at_anchors(w, "gt")),
    }


# --- Report: figures, viewer pages ---------------------------------------------------------------------------------
def table_figures(table):
    """What the report shows beside a table, built with it: the training curves of every model behind its rows;
    for Table 1 also each spotter's confidence over the test games, their viewer pages, the feature probe's
    confusion matrix and (synthetic world) localized players on the pitch."""
    figures = set()
    for method, encoder, variant, anchors in map(run_of, TABLE_FILES[table]):
        spotter = spotting_variant(variant)
        figures.add(
            f"results/plots/training/captioning/{method}/{encoder}/{variant}.png"
        )
        if anchors == "spots" and not dense(method):
            figures.add(
                f"results/plots/training/spotting/{method}/{encoder}/{spotter}.png"
            )
        if table == "table1":
            for game in SPLIT_IDS["test"]:
                if not dense(method):
                    figures.add(
                        f"results/plots/spotting/{method}/{encoder}/{spotter}/{game}.png"
                    )
                figures.add(f"results/viewer/{method}/{encoder}/{variant}/{game}.html")
    if table == "table1":
        figures |= {f"results/plots/probe/{encoder}.png" for encoder in ENCODERS}
        if SYNTHETIC:
            figures |= {
                f"results/plots/positions/{game}/{HALVES[0]}.png"
                for game in SPLIT_IDS["test"]
            }
    return sorted(figures)


def built_tables():
    """Table 1, and every other table already built (so the report shows them without starting their runs)."""
    return ["results/table1.csv"] + [
        f"results/{t}.csv"
        for t in TABLE_FILES
        if t != "table1" and Path(f"results/{t}.csv").is_file()
    ]


def spots_of(method, encoder, variant, game):
    # no spotter: the viewer shows a dense method's captions without a confidence curve
    if dense(method):
        return []
    spotter = f"results/spotting/{method}/{encoder}/{spotting_variant(variant)}"
    return [f"{spotter}/spots/{game}/{h}.json" for h in HALVES]
