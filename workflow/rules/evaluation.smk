# Metrics of every captioning run on the test split (`star evaluate`, one METEOR JVM per job) and the paper's tables
# (`star tables`): results/table1.csv (methods x encoders), table3 (STaR's feature blurring K x SSS), table4
# (captioning at ground-truth anchors) and table6 (STaR with/without global features x positions), each with .md.
# Caption metrics are @30 at the spots; at the ground-truth anchors, the captioning subtask's protocol (`gt@captioning`:
# one caption per annotation scored against it, as sn-caption's validate_captioning; Table 4 and Table 3's right
# half), and the dense evaluator with the tight 5 s window (`gt@5`, Table 4's extra columns).

ENCODER_NAMES = {"pptimesformer": "PP-TimesFormer", "baidu": "Baidu", "resnet": "ResNET",
                 "resnet_pca512": "ResNET-PCA512", "c3d": "C3D", "c3d_pca512": "C3D-PCA512", "i3d": "I3D",
                 "i3d_pca512": "I3D-PCA512"}
YES, NO = "✓", "×"


def encoder_fps(encoder):
    fps = config["decode"]["fps"] if encoder == "pptimesformer" else config["features"]["import"][encoder]["fps"]
    return f"{fps:g}"


def variant_name(blur=1, use_global=True, use_positions=True):
    """The canonical variant of STaR's ablation switches (the same run serves every table that needs it)."""
    switches = ([f"blur{blur}"] if blur != 1 else []) + ([] if use_global else ["noglobal"])
    return "-".join(switches + ([] if use_positions else ["nopos"])) or "default"


def metrics_file(method, encoder, variant, anchors, window):
    return f"results/metrics/{method}/{encoder}/{variant}/{anchors}@{window}.json"


def row_meta(w, anchors=None):
    """`star evaluate` metadata of a run: method, encoder, feature rate, anchors, and STaR's ablation switches."""
    meta = (f"--method {METHOD_NAMES[w.method]} --encoder {shlex.quote(ENCODER_NAMES.get(w.encoder, w.encoder))}"
            f" --fps {encoder_fps(w.encoder)} --meta anchors={anchors or w.anchors}")
    if w.method == "star":
        switches = parse_variant(w.variant)
        mark = lambda on: YES if on else NO
        meta += (f" --meta G.={mark(switches.get('use_global', True))}"
                 f" --meta P.={mark(switches.get('use_positions', True))}"
                 f" --meta SSS={mark(switches.get('use_positions', True))} --meta Blurring={switches.get('blur', 1)}")
    return meta


rule split_games:
    input:
        manifest="results/dataset/games.tsv",
    output:
        games="results/dataset/{split}_games.txt",
    wildcard_constraints:
        split="train|valid|test",
    log:
        "results/logs/split_games/{split}.log",
    shell:
        "awk -F'\\t' 'NR > 1 && $2 == \"{wildcards.split}\" {{print $3}}' {input.manifest:q} > {output.games:q}"
        " 2> {log:q}"


rule evaluate_captions:
    input:
        games="results/dataset/test_games.txt",
        labels=[game_file(g, LABELS) for g in SPLIT_IDS["test"]],
        predictions=lambda w: [f"results/captioning/{w.method}/{w.encoder}/{w.variant}/{w.anchors}/"
                               f"{GAMES[g].path}/{PREDICTIONS}" for g in SPLIT_IDS["test"]],
    output:
        metrics="results/metrics/{method}/{encoder}/{variant}/{anchors}@{window}.json",
    wildcard_constraints:
        anchors="spots|gt",
        window="[1-9][0-9]*",
    params:
        predictions="results/captioning/{method}/{encoder}/{variant}/{anchors}",
        meta=row_meta,
        seed=TABLES["seed"],
        code=code_hash("star.evaluate"),
    log:
        "results/logs/evaluate_captions/{method}_{encoder}_{variant}_{anchors}@{window}.log",
    benchmark:
        "results/benchmarks/evaluate_captions/{method}_{encoder}_{variant}_{anchors}@{window}.tsv"
    conda:
        env("torch")
    shell:
        "{STAR} evaluate {ROOT:q} {params.predictions:q} --games {input.games:q} --window {wildcards.window}"
        " --seed {params.seed} --json {output.metrics:q} {params.meta} > {log:q} 2>&1"


rule evaluate_captioning_subtask:
    input:
        games="results/dataset/test_games.txt",
        labels=[game_file(g, LABELS) for g in SPLIT_IDS["test"]],
        predictions=lambda w: [f"results/captioning/{w.method}/{w.encoder}/{w.variant}/gt/"
                               f"{GAMES[g].path}/{PREDICTIONS}" for g in SPLIT_IDS["test"]],
    output:
        metrics="results/metrics/{method}/{encoder}/{variant}/gt@captioning.json",
    params:
        predictions="results/captioning/{method}/{encoder}/{variant}/gt",
        meta=lambda w: row_meta(w, anchors="gt"),
        code=code_hash("star.evaluate"),
    log:
        "results/logs/evaluate_captioning_subtask/{method}_{encoder}_{variant}.log",
    benchmark:
        "results/benchmarks/evaluate_captioning_subtask/{method}_{encoder}_{variant}.tsv"
    conda:
        env("torch")
    shell:
        "{STAR} evaluate {ROOT:q} {params.predictions:q} --games {input.games:q} --protocol captioning"
        " --json {output.metrics:q} {params.meta} > {log:q} 2>&1"


def table3_files():
    files = []
    for blur in sorted(TABLES["blur"], reverse=True):  # the paper's order: strongest blurring first
        for positions in (False, True):
            variant = variant_name(blur=blur, use_positions=positions)
            files += [metrics_file("star", TABLE_ENCODER, variant, "spots", 30),
                      metrics_file("star", TABLE_ENCODER, variant, "gt", "captioning")]
    return files


TABLE_FILES = {
    "table1": [metrics_file(m, e, "default", "spots", 30) for e in ENCODERS for m in METHODS],
    "table3": table3_files(),
    "table4": [metrics_file(m, TABLE_ENCODER, "default", "gt", window) for m in METHODS for window in ("captioning", 5)],
    "table6": [metrics_file("star", TABLE_ENCODER, variant_name(use_global=g, use_positions=p), "spots", 30)
               for p, g in ((False, False), (False, True), (True, False), (True, True))],
}
TABLE_COLUMNS = {
    "table1": "table1",
    "table3": "Blurring,SSS,B4@30,M@30,R@30,C@30,B@4=B4@captioning,M=M@captioning,R=R-L@captioning,C=C@captioning",
    "table4": "table4",
    "table6": "table6",
}


rule make_table:
    input:
        metrics=lambda w: TABLE_FILES[w.table],
    output:
        csv="results/{table}.csv",
        md="results/{table}.md",
    wildcard_constraints:
        table="|".join(TABLE_FILES),
    params:
        columns=lambda w: TABLE_COLUMNS[w.table],
        code=code_hash("star.eval.tables"),
    log:
        "results/logs/make_table/{table}.log",
    conda:
        env("torch")
    shell:
        "{STAR} tables --out {output.csv:q} --columns {params.columns:q} {input.metrics:q} > {log:q} 2>&1"
