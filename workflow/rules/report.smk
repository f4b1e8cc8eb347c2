# The report's figures and the viewer pages (`snakemake --report report.html`; captions in workflow/report/).
# make_table builds each table's figures with it (table_figures), so the report of a run holds them all.


rule plot_training:
    input:
        log="results/{stage}/{method}/{encoder}/{variant}/train_log.csv",
    output:
        png=report(
            "results/plots/training/{stage}/{method}/{encoder}/{variant}.png",
            caption="../report/training.rst",
            category="Training curves",
            subcategory="{stage}",
            labels={
                "method": "{method}",
                "encoder": "{encoder}",
                "variant": "{variant}",
            },
        ),
    log:
        "results/logs/plot_training/{stage}_{method}_{encoder}_{variant}.log",
    benchmark:
        "results/benchmarks/plot_training/{stage}_{method}_{encoder}_{variant}.tsv"
    wildcard_constraints:
        stage="spotting|captioning",
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("plot_training"),
    params:
        title="{stage}: {method} / {encoder} / {variant}",
        code=code_hash("star.plots.training"),
    shell:
        "star plot training --log {input.log:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


rule plot_spotting:
    input:
        spots=lambda w: spots_of(w.method, w.encoder, w.variant, w.game),
        labels=lambda w: game_file(w.game, LABELS),
    output:
        png=report(
            "results/plots/spotting/{method}/{encoder}/{variant}/{game}.png",
            caption="../report/spotting.rst",
            category="Spotting confidence",
            subcategory="{method}",
            labels={
                "method": "{method}",
                "encoder": "{encoder}",
                "variant": "{variant}",
                "game": "{game}",
            },
        ),
    log:
        "results/logs/plot_spotting/{method}_{encoder}_{variant}_{game}.log",
    benchmark:
        "results/benchmarks/plot_spotting/{method}_{encoder}_{variant}_{game}.tsv"
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("plot_spotting"),
    params:
        threshold=config["spotting"]["threshold"],
        code=code_hash("star.plots.spotting"),
    shell:
        "star plot spotting --spots {input.spots:q} --labels {input.labels:q} --threshold {params.threshold}"
        " --title {wildcards.game:q} --out {output.png:q} > {log:q} 2>&1"


rule plot_probe:
    input:
        probe="results/features/{encoder}/probe.json",
    output:
        png=report(
            "results/plots/probe/{encoder}.png",
            caption="../report/probe.rst",
            category="Features",
            labels={"encoder": "{encoder}"},
        ),
    log:
        "results/logs/plot_probe/{encoder}.log",
    benchmark:
        "results/benchmarks/plot_probe/{encoder}.tsv"
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("plot_probe"),
    params:
        code=code_hash("star.plots.probe"),
    shell:
        "star plot probe --probe {input.probe:q} --out {output.png:q} > {log:q} 2>&1"


if SYNTHETIC:

    rule plot_pitch:
        input:
            positions=f"results/positions/{BACKEND}/{{game}}/{{half}}.h5",
            truth=lambda w: game_file(w.game, f"{w.half}_Labels-GameState.json"),
        output:
            png=report(
                "results/plots/positions/{game}/{half}.png",
                caption="../report/pitch.rst",
                category="Positions",
                labels={"game": "{game}", "half": "{half}"},
            ),
        log:
            "results/logs/plot_pitch/{game}_{half}.log",
        benchmark:
            "results/benchmarks/plot_pitch/{game}_{half}.tsv"
        conda:
            env("torch")
        resources:
            mem_mb=mem_mb("plot_pitch"),
        params:
            truth_fps=POSITIONS["gamestate_json"]["fps"],
            code=code_hash("star.plots.pitch"),
        shell:
            "star plot pitch --positions {input.positions:q} --truth {input.truth:q}"
            " --truth-fps {params.truth_fps} --out {output.png:q} > {log:q} 2>&1"


rule viewer_page:
    input:
        predictions=lambda w: f"results/captioning/{w.method}/{w.encoder}/{w.variant}/spots/{GAMES[w.game].path}/"
        f"{PREDICTIONS}",
        spots=lambda w: spots_of(w.method, w.encoder, w.variant, w.game),
        labels=lambda w: game_file(w.game, LABELS),
    output:
        page=report(
            "results/viewer/{method}/{encoder}/{variant}/{game}.html",
            caption="../report/viewer.rst",
            category="Viewer pages",
            subcategory="{method}",
            labels={
                "method": "{method}",
                "encoder": "{encoder}",
                "variant": "{variant}",
                "game": "{game}",
            },
        ),
    log:
        "results/logs/viewer_page/{method}_{encoder}_{variant}_{game}.log",
    benchmark:
        "results/benchmarks/viewer_page/{method}_{encoder}_{variant}_{game}.tsv"
    conda:
        env("torch")
    resources:
        mem_mb=mem_mb("viewer_page"),
    params:
        video_dir=lambda w: game_file(w.game, ""),
        video=literal(config["dataset"]["video"]),
        code=code_hash("star.viewer"),
    shell:
        "star viewer --predictions {input.predictions:q} --spots {input.spots:q} --labels {input.labels:q}"
        " --video-dir {params.video_dir:q} --video {params.video:q} --out {output.page:q} > {log:q} 2>&1"
