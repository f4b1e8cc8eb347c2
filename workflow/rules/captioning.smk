# Caption generation per method x encoder x variant: training on the train split's annotations, then captions of
# every test game at its spots (`spots`) or at its ground-truth annotations (`gt`, Table 4), written in the
# official format under results/captioning/<method>/<encoder>/<variant>/<anchors>/<game path>/.

GAME_IDS = {g.path: g.id for g in GAMES.values()}
PREDICTIONS = "results_dense_captioning.json"


rule captioning_train:
    input:
        unpack(train_inputs),
    output:
        model=MODEL_DIR.format(stage="captioning") + "/model.safetensors",
        report=MODEL_DIR.format(stage="captioning") + "/train.json",
    params:
        args=train_args,
        cfg=stage_json("captioning"),
        code=stage_code("captioning"),
    threads: 1
    log:
        "results/logs/captioning_train/{method}_{encoder}_{variant}.log",
    benchmark:
        "results/benchmarks/captioning_train/{method}_{encoder}_{variant}.tsv"
    conda:
        env("torch")
    shell:
        "{STAR} captioning-train {params.args} --out {output.model:q} --report {output.report:q}"
        " --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"


def captioning_infer_inputs(w):
    game = GAME_IDS[w.gamepath]
    inputs = {
        "model": f"results/captioning/{w.method}/{w.encoder}/{w.variant}/model.safetensors",
        "features": [f"results/features/{w.encoder}/{game}/{h}.h5" for h in HALVES],
    }
    if uses_positions(w.method, w.variant):
        inputs["positions"] = [f"results/positions/{BACKEND}/{game}/{h}.h5" for h in HALVES]
    if w.anchors == "gt":
        inputs["labels"] = game_file(game, LABELS)
    else:
        spotter = f"results/spotting/{w.method}/{w.encoder}/{spotting_variant(w.variant)}"
        inputs["spots"] = [f"{spotter}/spots/{game}/{h}.json" for h in HALVES]
    return inputs


def captioning_infer_args(w, input):
    quoted = lambda files: " ".join(shlex.quote(str(f)) for f in files)
    args = f"--features {quoted(input.features)}"
    if "positions" in input.keys():
        args += f" --positions {quoted(input.positions)}"
    return args + (f" --labels {shlex.quote(input.labels)}" if w.anchors == "gt" else f" --spots {quoted(input.spots)}")


rule captioning_infer:
    input:
        unpack(captioning_infer_inputs),
    output:
        predictions="results/captioning/{method}/{encoder}/{variant}/{anchors}/{gamepath}/" + PREDICTIONS,
    wildcard_constraints:
        anchors="spots|gt",
        gamepath="|".join(re.escape(g.path) for g in GAMES.values()),
    params:
        args=captioning_infer_args,
        cfg=literal(star_config.to_json({"model": config["model"], "captioning": config["captioning"]})),
        code=code_hash("star.infer.captions", *TOKENIZERS.values()),
    threads: 1
    log:
        "results/logs/captioning_infer/{method}_{encoder}_{variant}_{anchors}/{gamepath}.log",
    benchmark:
        "results/benchmarks/captioning_infer/{method}_{encoder}_{variant}_{anchors}/{gamepath}.tsv"
    conda:
        env("torch")
    shell:
        "{STAR} captioning-infer --model {input.model:q} --game-path {wildcards.gamepath:q} {params.args}"
        " --out {output.predictions:q} --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"
