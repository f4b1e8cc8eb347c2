# The games of the configured dataset: the manifest (id, split, path) and each split's game list.


rule dataset_manifest:
    output:
        manifest="results/dataset/games.tsv",
    log:
        "results/logs/dataset_manifest.log",
    benchmark:
        "results/benchmarks/dataset_manifest.tsv"
    conda:
        env("video")
    resources:
        mem_mb=mem_mb("dataset_manifest"),
    params:
        cfg=section_json_of("seed", "dataset", "world"),
        code=code_hash("star.data.manifest"),
    shell:
        "star manifest --config {params.cfg:q} --out {output.manifest:q} > {log:q} 2>&1"


rule split_games:
    input:
        manifest="results/dataset/games.tsv",
    output:
        games="results/dataset/{split}_games.txt",
    log:
        "results/logs/split_games/{split}.log",
    benchmark:
        "results/benchmarks/split_games/{split}.tsv"
    wildcard_constraints:
        split="train|valid|test",
    conda:
        env("video")
    resources:
        mem_mb=mem_mb("split_games"),
    params:
        code=code_hash("star.data.manifest"),
    shell:
        "star manifest --manifest {input.manifest:q} --split {wildcards.split} --out {output.games:q} > {log:q} 2>&1"
