# Caption generation per method x encoder x variant: training on the train split's annotations, then captions of
# every test game at its spots (`spots`) or at its ground-truth annotations (`gt`, Table 4), written in the
# official format under results/captioning/<method>/<encoder>/<variant>/<anchors>/<game path>/ (one job per model
# and anchors: the model is loaded once for the split).


rule captioning_train:
    input:
        unpack(train_inputs),
    output:
        model=f"{CAPTIONING_DIR}/model.safetensors",
        report=f"{CAPTIONING_DIR}/train.json",
        log_csv=f"{CAPTIONING_DIR}/train_log.csv",
    log:
        "results/logs/captioning_train/{method}_{encoder}_{variant}.log",
    benchmark:
        "results/benchmarks/captioning_train/{method}_{encoder}_{variant}.tsv"
    conda:
        env("torch")
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb("captioning_train"),
    params:
        args=train_args,
        cfg=stage_json("captioning"),
        code=stage_code("captioning"),
    shell:
        "star captioning-train {params.args} --out {output.model:q} --report {output.report:q}"
        " --log {output.log_csv:q}"
        " --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"


rule captioning_infer:
    input:
        unpack(captioning_infer_inputs),
    output:
        predictions=test_predictions(f"{CAPTIONING_DIR}/{{anchors}}"),
    log:
        "results/logs/captioning_infer/{method}_{encoder}_{variant}_{anchors}.log",
    benchmark:
        "results/benchmarks/captioning_infer/{method}_{encoder}_{variant}_{anchors}.tsv"
    wildcard_constraints:
        anchors="spots|gt",
    conda:
        env("torch")
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb("captioning_infer"),
    params:
        args=captioning_infer_args,
        cfg=literal(
            star_config.to_json(
                {"model": config["model"], "captioning": config["captioning"]}
            )
        ),
        code=lambda w: method_code(
            w.method, "star.infer.captions", *registry.tokenizer_modules()
        ),
    shell:
        "star captioning-infer --model {input.model:q} {params.args}"
        " --out {output.predictions:q} --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"
