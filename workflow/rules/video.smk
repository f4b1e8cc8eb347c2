# Every half video to frames at decode.fps, each frame picked by its timestamp (PyAV).


rule video_decode:
    input:
        video=lambda w: game_file(w.game, half_file(config["dataset"]["video"], w.half)),
    output:
        frames="results/frames/{game}/{half}.h5",
    log:
        "results/logs/video_decode/{game}_{half}.log",
    benchmark:
        "results/benchmarks/video_decode/{game}_{half}.tsv"
    conda:
        env("video")
    resources:
        mem_mb=mem_mb("video_decode"),
    params:
        cfg=section_json("decode"),
        code=code_hash("star.video.decode"),
    shell:
        "star decode --video {input.video:q} --out {output.frames:q} --game {wildcards.game} --half {wildcards.half}"
        " --config {params.cfg:q} > {log:q} 2>&1"
