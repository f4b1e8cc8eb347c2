# Clip features per half: PP-TimesFormer extracted from the decoded frames (fine-tuned on the train split when no
# checkpoint is given), or SoccerNet's precomputed .npy features imported. MKL_DEBUG_CPU_TYPE=5 must be set before
# Paddle's process starts (its MKL is ~3x slower on AMD CPUs otherwise).

PP_WEIGHTS = PP["weights"] or f"results/encoder/pptimesformer_{PP['preset']}.pdparams"
IMPORTED = [e for e in config["features"]["encoders"] if e != "pptimesformer"]


def labels_of(split):
    """The labels file of every half of `split`, parallel to halves_of(split, ...)."""
    return [game_file(g, config["dataset"]["labels"]) for g in SPLIT_IDS[split] for h in HALVES]


if PP["weights"] is None:

    rule encoder_finetune:
        input:
            frames=halves_of("train", "results/frames/{game}/{half}.h5"),
            labels=labels_of("train"),
        output:
            weights=PP_WEIGHTS,
            report=f"results/encoder/pptimesformer_{PP['preset']}.json",
        params:
            cfg=section_json("features", "pptimesformer"),
            seed=config["seed"],
            code=code_hash("star.features.finetune"),
        threads: 2
        log:
            "results/logs/encoder_finetune.log",
        benchmark:
            "results/benchmarks/encoder_finetune.tsv"
        conda:
            env("video")
        shell:
            "MKL_DEBUG_CPU_TYPE=5 {STAR} encoder-finetune --frames {input.frames:q} --labels {input.labels:q}"
            " --out {output.weights:q} --report {output.report:q} --seed {params.seed} --threads {threads}"
            " --config {params.cfg:q} > {log:q} 2>&1"


rule features_extract:
    input:
        frames="results/frames/{game}/{half}.h5",
        weights=PP_WEIGHTS,
    output:
        features="results/features/pptimesformer/{game}/{half}.h5",
    params:
        cfg=section_json("features", "pptimesformer"),
        code=code_hash("star.features.extract"),
    threads: 1
    log:
        "results/logs/features_extract/{game}_{half}.log",
    benchmark:
        "results/benchmarks/features_extract/{game}_{half}.tsv"
    conda:
        env("video")
    shell:
        "MKL_DEBUG_CPU_TYPE=5 {STAR} features-extract --frames {input.frames:q} --weights {input.weights:q}"
        " --out {output.features:q} --threads {threads} --config {params.cfg:q} > {log:q} 2>&1"


def video_duration_arg(w):
    """`--video V` when the half's video is on disk: the import then checks rows / fps against its duration
    (a 2-fps file declared 1 fps is caught). A features-only SoccerNet tree has no videos: the rows must then
    reach the half's last annotation (a 1-fps file declared 2 fps is caught)."""
    video = game_file(w.game, half_file(config["dataset"]["video"], w.half))
    if Path(video).is_file():
        return f"--video {shlex.quote(video)}"
    labels = game_file(w.game, config["dataset"]["labels"])
    return f"--labels {shlex.quote(labels)}" if Path(labels).is_file() else ""


rule features_import:
    input:
        npy=lambda w: game_file(w.game, half_file(config["features"]["import"][w.encoder]["file"], w.half)),
    output:
        features="results/features/{encoder}/{game}/{half}.h5",
    wildcard_constraints:
        encoder="|".join(config["features"]["import"]),
    params:
        cfg=lambda w: star_config.to_json(config["features"]["import"][w.encoder]),
        video=video_duration_arg,
        code=code_hash("star.features.import_npy"),
    log:
        "results/logs/features_import/{encoder}_{game}_{half}.log",
    benchmark:
        "results/benchmarks/features_import/{encoder}_{game}_{half}.tsv"
    conda:
        env("video")
    shell:
        "{STAR} features-import --npy {input.npy:q} --encoder {wildcards.encoder} --game {wildcards.game}"
        " --half {wildcards.half} {params.video} --out {output.features:q} --config {params.cfg:q} > {log:q} 2>&1"


def probe_frames(split):
    """Frames caches for the probe's mean-colour baseline (pptimesformer only: imported features have none)."""

    def inputs(w):
        return halves_of(split, "results/frames/{game}/{half}.h5") if w.encoder == "pptimesformer" else []

    return inputs


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
    params:
        cfg=section_json("features", "probe"),
        seed=config["seed"],
        code=code_hash("star.features.probe"),
    log:
        "results/logs/features_probe/{encoder}.log",
    benchmark:
        "results/benchmarks/features_probe/{encoder}.tsv"
    conda:
        env("video")
    shell:
        "{STAR} features-probe --train {input.train:q} --train-labels {input.train_labels:q}"
        " --test {input.test:q} --test-labels {input.test_labels:q} --train-frames {input.train_frames:q}"
        " --test-frames {input.test_frames:q} --seed {params.seed}"
        " --config {params.cfg:q} --out {output.report:q} > {log:q} 2>&1"
