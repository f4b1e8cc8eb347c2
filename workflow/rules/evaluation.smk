# Metrics of every captioning run on the test split (`star evaluate`, one METEOR JVM per job; one job for
# both protocols where the tables need a run's spots@30 and gt@captioning) and the paper's tables
# (`star tables`): results/table1.csv (methods x encoders), table3 (STaR's feature blurring K x SSS), table4
# (captioning at ground-truth anchors) and table6 (STaR with/without global features x positions), each with .md;
# every metric with its game-level bootstrap interval (tables.bootstrap resamples).
# Caption metrics are @30 at the spots; at the ground-truth anchors, the captioning subtask's protocol (`gt@captioning`:
# one caption per annotation scored against it, as sn-caption's validate_captioning; Table 4 and Table 3's right
# half), and the dense evaluator with the tight 5 s window (`gt@5`, Table 4's extra columns).


rule evaluate_captions:
    input:
        games="results/dataset/test_games.txt",
        labels=[game_file(g, LABELS) for g in SPLIT_IDS["test"]],
        predictions=lambda w: [
            f"results/captioning/{w.method}/{w.encoder}/{w.variant}/{w.anchors}/"
            f"{GAMES[g].path}/{PREDICTIONS}"
            for g in SPLIT_IDS["test"]
        ],
    output:
        metrics="results/metrics/{method}/{encoder}/{variant}/{anchors}@{window}.json",
    log:
        "results/logs/evaluate_captions/{method}_{encoder}_{variant}_{anchors}@{window}.log",
    benchmark:
        "results/benchmarks/evaluate_captions/{method}_{encoder}_{variant}_{anchors}@{window}.tsv"
    wildcard_constraints:
        anchors="spots|gt",
        window="[1-9][0-9]*",
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("evaluate_captions"),
    params:
        predictions="results/captioning/{method}/{encoder}/{variant}/{anchors}",
        meta=row_meta,
        seed=TABLES["seed"],
        root=literal(ROOT),
        bootstrap=TABLES["bootstrap"],
        code=code_hash("star.evaluate"),
    shell:
        "star evaluate {params.root:q} {params.predictions:q} --games {input.games:q} --window {wildcards.window}"
        " --seed {params.seed} --bootstrap {params.bootstrap} --json {output.metrics:q} {params.meta} > {log:q} 2>&1"


rule evaluate_captioning_subtask:
    input:
        games="results/dataset/test_games.txt",
        labels=[game_file(g, LABELS) for g in SPLIT_IDS["test"]],
        predictions=lambda w: [
            f"results/captioning/{w.method}/{w.encoder}/{w.variant}/gt/"
            f"{GAMES[g].path}/{PREDICTIONS}"
            for g in SPLIT_IDS["test"]
        ],
    output:
        metrics="results/metrics/{method}/{encoder}/{variant}/gt@captioning.json",
    log:
        "results/logs/evaluate_captioning_subtask/{method}_{encoder}_{variant}.log",
    benchmark:
        "results/benchmarks/evaluate_captioning_subtask/{method}_{encoder}_{variant}.tsv"
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("evaluate_captioning_subtask"),
    params:
        predictions="results/captioning/{method}/{encoder}/{variant}/gt",
        meta=lambda w: row_meta(w, anchors="gt"),
        root=literal(ROOT),
        seed=TABLES["seed"],
        bootstrap=TABLES["bootstrap"],
        code=code_hash("star.evaluate"),
    shell:
        "star evaluate {params.root:q} {params.predictions:q} --games {input.games:q} --protocol captioning"
        " --seed {params.seed} --bootstrap {params.bootstrap} --json {output.metrics:q} {params.meta} > {log:q} 2>&1"


# One job for both protocols where the tables need both (EVALUATE_BOTH, common.smk): two calls joined by --and share
# one METEOR JVM
rule evaluate_both:
    input:
        games="results/dataset/test_games.txt",
        labels=[game_file(g, LABELS) for g in SPLIT_IDS["test"]],
        predictions=lambda w: [
            f"results/captioning/{w.run}/{anchors}/{GAMES[g].path}/{PREDICTIONS}"
            for anchors in ("spots", "gt")
            for g in SPLIT_IDS["test"]
        ],
    output:
        spots=f"results/metrics/{{run}}/spots@{DENSE_WINDOW}.json",
        gt="results/metrics/{run}/gt@captioning.json",
    log:
        "results/logs/evaluate_both/{run}.log",
    benchmark:
        "results/benchmarks/evaluate_both/{run}.tsv"
    wildcard_constraints:
        run=EVALUATE_BOTH,
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("evaluate_both"),
    params:
        meta_spots=lambda w: row_meta(at_anchors(w, "spots")),
        meta_gt=lambda w: row_meta(at_anchors(w, "gt")),
        root=literal(ROOT),
        seed=TABLES["seed"],
        bootstrap=TABLES["bootstrap"],
        code=code_hash("star.evaluate"),
    shell:
        "star evaluate {params.root:q} results/captioning/{wildcards.run}/spots --games {input.games:q}"
        f" --window {DENSE_WINDOW}"
        " --seed {params.seed} --bootstrap {params.bootstrap} --json {output.spots:q} {params.meta_spots}"
        " --and {params.root:q} results/captioning/{wildcards.run}/gt --games {input.games:q} --protocol captioning"
        " --seed {params.seed} --bootstrap {params.bootstrap} --json {output.gt:q} {params.meta_gt} > {log:q} 2>&1"


ruleorder: evaluate_both > evaluate_captions
ruleorder: evaluate_both > evaluate_captioning_subtask


rule make_table:
    input:
        metrics=lambda w: TABLE_FILES[w.table],
        figures=lambda w: table_figures(w.table),  # built with the table, for the report; not read
    output:
        csv=report(
            "results/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        md="results/{table}.md",
    log:
        "results/logs/make_table/{table}.log",
    benchmark:
        "results/benchmarks/make_table/{table}.tsv"
    wildcard_constraints:
        table="|".join(TABLE_FILES),
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("make_table"),
    params:
        columns=lambda w: TABLE_COLUMNS[w.table],
        code=code_hash("star.eval.tables"),
    shell:
        "star tables --out {output.csv:q} --columns {params.columns:q} {input.metrics:q} > {log:q} 2>&1"


# Diagnostics (`star diagnostics`): side / zone / long-range agreement at the ground-truth anchors, caption
# diversity and the spotting confusion at the spots, for every method and STaR's Table 6 variants
# (DIAGNOSTIC_RUNS, common.smk; long-range: facts older than 15 s, half of the methods' 30 s captioning window).
rule diagnostics_build:
    input:
        games="results/dataset/test_games.txt",
        labels=[game_file(g, LABELS) for g in SPLIT_IDS["test"]],
        predictions=[
            f"{d}/{GAMES[g].path}/{PREDICTIONS}"
            for anchors in ("gt", "spots")
            for d in diagnostic_dirs(anchors).values()
            for g in SPLIT_IDS["test"]
        ],
    output:
        csv=report(
            "results/diagnostics.csv",
            caption="../report/diagnostics.rst",
            category="Diagnostics",
            labels={"table": "agreement and diversity"},
        ),
        md="results/diagnostics.md",
        confusion=report(
            "results/diagnostics_confusion.csv",
            caption="../report/diagnostics.rst",
            category="Diagnostics",
            labels={"table": "spotting confusion"},
        ),
    log:
        "results/logs/diagnostics_build.log",
    benchmark:
        "results/benchmarks/diagnostics_build.tsv"
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("diagnostics_build"),
    params:
        runs=literal(
            " ".join(
                f"--run {shlex.quote(name)} {shlex.quote(gt)} {shlex.quote(spots)}"
                for name, gt, spots in zip(
                    DIAGNOSTIC_RUNS,
                    diagnostic_dirs("gt").values(),
                    diagnostic_dirs("spots").values(),
                )
            )
        ),
        root=literal(ROOT),
        seed=TABLES["seed"],
        bootstrap=TABLES["bootstrap"],
        code=code_hash("star.eval.diagnostics"),
    shell:
        "star diagnostics {params.root:q} --games {input.games:q} --out {output.csv:q} {params.runs}"
        " --seed {params.seed} --bootstrap {params.bootstrap} > {log:q} 2>&1"
