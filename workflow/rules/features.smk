# Clip features per half: PP-TimesFormer extracted from the decoded frames (fine-tuned on the train split when no
# checkpoint is given), or SoccerNet's precomputed .npy features imported. MKL_DEBUG_CPU_TYPE=5 must be set before
# Paddle's process starts (its MKL is ~3x slower on AMD CPUs otherwise).

if PP["weights"] is None:

    rule encoder_finetune:
        input:
            frames=halves_of("train", "results/frames/{game}/{half}.h5"),
            labels=labels_of("train"),
        output:
            weights=PP_WEIGHTS,
            report=f"results/encoder/pptimesformer_{PP['preset']}.json",
        log:
            "results/logs/encoder_finetune.log",
        benchmark:
            "results/benchmarks/encoder_finetune.tsv"
        conda:
            env("video")
        threads: 2
        resources:
            mem_mb=mem_mb("encoder_finetune"),
        params:
            cfg=section_json("features", "pptimesformer"),
            seed=config["seed"],
            code=code_hash("star.features.finetune"),
        shell:
            "MKL_DEBUG_CPU_TYPE=5 star encoder-finetune --frames {input.frames:q} --labels {input.labels:q}"
            " --out {output.weights:q} --report {output.report:q} --seed {params.seed} --threads {threads}"
            " --config {params.cfg:q} > {log:q} 2>&1"


rule features_extract:
    input:
        frames="results/frames/{game}/{half}.h5",
        weights=encoder_weights,
    output:
        features="results/features/{encoder}/{game}/{half}.h5",
    log:
        "results/logs/features_extract/{encoder}_{game}_{half}.log",
    benchmark:
        "results/benchmarks/features_extract/{encoder}_{game}_{half}.tsv"
    wildcard_constraints:
        encoder="|".join(VIDEO_ENCODERS) or "NO_VIDEO_ENCODER",
    conda:
        env("video")
    threads: 1
    resources:
        mem_mb=mem_mb("features_extract"),
    params:
        cfg=lambda w: star_config.to_json(config["features"][w.encoder]),
        weights=lambda w, input: (
            f"--weights {shlex.quote(input.weights)}" if input.weights else ""
        ),
        code=lambda w: code_hash("star.features.extract", encoder_module(w.encoder)),
    shell:
        "MKL_DEBUG_CPU_TYPE=5 star features-extract --encoder {wildcards.encoder} --frames {input.frames:q}"
        " {params.weights} --out {output.features:q} --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"


rule features_import:
    input:
        npy=lambda w: game_file(
            w.game, half_file(config["features"]["import"][w.encoder]["file"], w.half)
        ),
    output:
        features="results/features/{encoder}/{game}/{half}.h5",
    log:
        "results/logs/features_import/{encoder}_{game}_{half}.log",
    benchmark:
        "results/benchmarks/features_import/{encoder}_{game}_{half}.tsv"
    wildcard_constraints:
        encoder="|".join(config["features"]["import"]),
    conda:
        env("video")
    resources:
        mem_mb=mem_mb("features_import"),
    params:
        cfg=lambda w: star_config.to_json(config["features"]["import"][w.encoder]),
        video=video_duration_arg,
        code=code_hash("star.features.import_npy"),
    shell:
        "star features-import --npy {input.npy:q} --encoder {wildcards.encoder} --game {wildcards.game}"
        " --half {wildcards.half} {params.video} --out {output.features:q} --config {params.cfg:q} > {log:q} 2>&1"


rule features_probe:
    input:
        train=halves_of("train", "results/features/{{encoder}}/{game}/{half}.h5"),
        train_labels=labels_of("train"),
        test=halves_of("test", "results/features/{{encoder}}/{game}/{half}.h5"),
        test_labels=labels_of("test"),
        train_frames=probe_frames("train"),
        test_frames=probe_frames("test"),
    output:
        report="results/features/{encoder}/probe.json",
    log:
        "results/logs/features_probe/{encoder}.log",
    benchmark:
        "results/benchmarks/features_probe/{encoder}.tsv"
    conda:
        env("video")
    resources:
        mem_mb=mem_mb("features_probe"),
    params:
        cfg=section_json("features", "probe"),
        seed=config["seed"],
        code=code_hash("star.features.probe"),
    shell:
        "star features-probe --train {input.train:q} --train-labels {input.train_labels:q}"
        " --test {input.test:q} --test-labels {input.test_labels:q} --train-frames {input.train_frames:q}"
        " --test-frames {input.test_frames:q} --seed {params.seed}"
        " --config {params.cfg:q} --out {output.report:q} > {log:q} 2>&1"
