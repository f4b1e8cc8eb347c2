# Event spotting per method x encoder x variant: training on the train split (early-stopped on valid), then a
# sliding window + NMS over every test half. Variants are STaR's ablations (star/train/common.py); blurring is a
# captioning ablation, so a captioning variant takes its spots from `spotting_variant(variant)`.

from star.train.common import TOKENIZERS, parse_variant, spotting_variant
from star.train.stage import stage_code as train_code

METHODS = config["methods"]
METHOD_NAMES = {"sdvc": "SDVC", "delta": "Delta", "star": "STaR"}
ENCODERS = config["features"]["encoders"]
TABLES = config["tables"]
TABLE_ENCODER = TABLES["encoder"] or ENCODERS[0]
LABELS = config["dataset"]["labels"]
MODEL_DIR = "results/{stage}/{{method}}/{{encoder}}/{{variant}}"

wildcard_constraints:
    method="sdvc|delta|star",
    encoder="|".join(map(re.escape, ENCODERS)),
    variant="default|[a-z0-9]+(-[a-z0-9]+)*",


def stage_json(stage):
    """What a model stage reads of the config: seed, the dataset's halves and labels file, model, its section."""
    return literal(star_config.to_json({
        "seed": config["seed"], "model": config["model"], stage: config[stage],
        "dataset": {"halves": HALVES, "labels": LABELS}}))


def stage_code(stage):
    """Code hash of a model stage: its module and the method's model module (imported by name)."""
    return lambda w: train_code(stage, w.method)


def uses_positions(method, variant):
    """Only STaR reads positions (its SSS), unless the variant drops them."""
    return method == "star" and "use_positions" not in parse_variant(variant)


def train_inputs(w):
    """Manifest, labels and caches of the train and valid splits (positions where the model reads them)."""
    games = SPLIT_IDS["train"] + SPLIT_IDS["valid"]
    files = {
        "manifest": "results/dataset/games.tsv",
        "labels": [game_file(g, LABELS) for g in games],
        "features": [f"results/features/{w.encoder}/{g}/{h}.h5" for g in games for h in HALVES],
    }
    if uses_positions(w.method, w.variant):
        files["positions"] = [f"results/positions/{BACKEND}/{g}/{h}.h5" for g in games for h in HALVES]
    return files


def train_args(w, input):
    positions = f" --positions results/positions/{BACKEND}" if "positions" in input.keys() else ""
    return (f"--method {w.method} --variant {w.variant} --manifest {shlex.quote(input.manifest)}"
            f" --labels-root {shlex.quote(ROOT)} --features results/features/{w.encoder}{positions}")


rule spotting_train:
    input:
        unpack(train_inputs),
    output:
        model=MODEL_DIR.format(stage="spotting") + "/model.safetensors",
        report=MODEL_DIR.format(stage="spotting") + "/train.json",
    params:
        args=train_args,
        cfg=stage_json("spotting"),
        code=stage_code("spotting"),
    threads: 1
    log:
        "results/logs/spotting_train/{method}_{encoder}_{variant}.log",
    benchmark:
        "results/benchmarks/spotting_train/{method}_{encoder}_{variant}.tsv"
    conda:
        env("torch")
    shell:
        "{STAR} spotting-train {params.args} --out {output.model:q} --report {output.report:q}"
        " --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"


def spotting_infer_inputs(w):
    files = {"model": f"results/spotting/{w.method}/{w.encoder}/{w.variant}/model.safetensors",
             "features": f"results/features/{w.encoder}/{w.game}/{w.half}.h5"}
    if uses_positions(w.method, w.variant):
        files["positions"] = f"results/positions/{BACKEND}/{w.game}/{w.half}.h5"
    return files


def spotting_infer_args(w, input):
    return f"--positions {shlex.quote(input.positions)}" if "positions" in input.keys() else ""


rule spotting_infer:
    input:
        unpack(spotting_infer_inputs),
    output:
        spots=MODEL_DIR.format(stage="spotting") + "/spots/{game}/{half}.json",
    params:
        positions=spotting_infer_args,
        cfg=literal(star_config.to_json({"model": config["model"], "spotting": config["spotting"]})),
        code=code_hash("star.infer.spots"),
    threads: 1
    log:
        "results/logs/spotting_infer/{method}_{encoder}_{variant}_{game}_{half}.log",
    benchmark:
        "results/benchmarks/spotting_infer/{method}_{encoder}_{variant}_{game}_{half}.tsv"
    conda:
        env("torch")
    shell:
        "{STAR} spotting-infer --model {input.model:q} --features {input.features:q} {params.positions}"
        " --out {output.spots:q}"
        " --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"
