# Caption generation per method x encoder x variant: training on the train split's annotations, then captions of
# every test game at its spots (`spots`) or at its ground-truth annotations (`gt`, Table 4), written in the
# official format under results/captioning/<method>/<encoder>/<variant>/<anchors>/<game path>/ (one job per model
# and anchors, or for both anchors where the tables need both: the model is loaded once for the split).


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


INFER_CFG = literal(
    star_config.to_json({"model": config["model"], "captioning": config["captioning"]})
)


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
        cfg=INFER_CFG,
        code=lambda w: method_code(
            w.method, "star.infer.captions", *registry.tokenizer_modules()
        ),
    shell:
        "star captioning-infer --model {input.model:q} {params.args}"
        " --out {output.predictions:q} --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"


# One job at both anchors where the tables need both (INFER_BOTH, common.smk): two calls joined by --and, one model load
rule captioning_infer_both:
    input:
        unpack(both_anchors_inputs),
    output:
        spots=test_predictions("results/captioning/{run}/spots"),
        gt=test_predictions("results/captioning/{run}/gt"),
    log:
        "results/logs/captioning_infer_both/{run}.log",
    benchmark:
        "results/benchmarks/captioning_infer_both/{run}.tsv"
    wildcard_constraints:
        run=INFER_BOTH,
    conda:
        env("torch")
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb("captioning_infer_both"),
    params:
        spots=lambda w, input: captioning_infer_args(at_anchors(w, "spots"), input),
        gt=lambda w, input: captioning_infer_args(at_anchors(w, "gt"), input),
        cfg=INFER_CFG,
        code=lambda w: method_code(
            at_anchors(w, "gt").method,
            "star.infer.captions",
            *registry.tokenizer_modules(),
        ),
    shell:
        "star captioning-infer --model {input.model:q} {params.spots} --out {output.spots:q} --threads {threads}"
        " --config {params.cfg:q} --and --model {input.model:q} {params.gt} --out {output.gt:q}"
        " --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"


ruleorder: captioning_infer_both > captioning_infer
