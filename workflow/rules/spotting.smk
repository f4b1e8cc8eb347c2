# Event spotting per method x encoder x variant: training on the train split (early-stopped on valid), then a
# sliding window + NMS over every test half (one job per model: the model is loaded once for the split). Variants
# are STaR's ablations (star/variants.py); blurring is a captioning ablation, so a captioning variant takes its
# spots from `spotting_variant(variant)`.


rule spotting_train:
    input:
        unpack(train_inputs),
    output:
        model=f"{SPOTTING_DIR}/model.safetensors",
        report=f"{SPOTTING_DIR}/train.json",
        log_csv=f"{SPOTTING_DIR}/train_log.csv",
    log:
        "results/logs/spotting_train/{method}_{encoder}_{variant}.log",
    benchmark:
        "results/benchmarks/spotting_train/{method}_{encoder}_{variant}.tsv"
    conda:
        env("torch")
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb("spotting_train"),
    params:
        args=train_args,
        cfg=stage_json("spotting"),
        code=stage_code("spotting"),
    shell:
        "star spotting-train {params.args} --out {output.model:q} --report {output.report:q}"
        " --log {output.log_csv:q}"
        " --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"


rule spotting_infer:
    input:
        unpack(spotting_infer_inputs),
    output:
        spots=[
            f"{SPOTTING_DIR}/spots/{g}/{h}.json"
            for g in SPLIT_IDS["test"]
            for h in HALVES
        ],
    log:
        "results/logs/spotting_infer/{method}_{encoder}_{variant}.log",
    benchmark:
        "results/benchmarks/spotting_infer/{method}_{encoder}_{variant}.tsv"
    conda:
        env("torch")
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb("spotting_infer"),
    params:
        positions=spotting_infer_args,
        cfg=literal(
            star_config.to_json(
                {"model": config["model"], "spotting": config["spotting"]}
            )
        ),
        code=lambda w: method_code(w.method, "star.infer.spots"),
    shell:
        "star spotting-infer --model {input.model:q} --features {input.features:q} {params.positions}"
        " --out {output.spots:q}"
        " --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"
