# Calibrated player positions per half at positions.fps, from one of three backends (positions.backend):
# classical (pixels of the decoded frames), gamestate_json (Game State JSON in each game folder), sngamestate
# (tracklab on the half video, in its own environment, see envs/gamestate.yaml).


rule positions_localize:
    input:
        unpack(positions_inputs),
    output:
        positions=f"results/positions/{BACKEND}/{{game}}/{{half}}.h5",
    log:
        "results/logs/positions_localize/{game}_{half}.log",
    benchmark:
        "results/benchmarks/positions_localize/{game}_{half}.tsv"
    conda:
        env("video")
    resources:
        mem_mb=mem_mb("positions_localize"),
    params:
        cfg=section_json("positions"),
        args=positions_args,
        code=code_hash(*positions_code_modules(BACKEND)),
    shell:
        "star positions-localize {params.args} --out {output.positions:q} --game {wildcards.game} --half {wildcards.half}"
        " --config {params.cfg:q} > {log:q} 2>&1"


if SYNTHETIC:

    rule positions_evaluate:
        input:
            positions=all_halves(f"results/positions/{BACKEND}/{{game}}/{{half}}.h5"),
            manifest="results/dataset/games.tsv",
            truth=[
                game_file(g, f"{h}_Labels-GameState.json")
                for g in GAMES
                for h in HALVES
            ],
            cameras=[game_file(g, f"{h}_camera.json") for g in GAMES for h in HALVES],
        output:
            report=f"results/positions/{BACKEND}/evaluation.json",
        log:
            "results/logs/positions_evaluate.log",
        benchmark:
            "results/benchmarks/positions_evaluate.tsv"
        conda:
            env("video")
        resources:
            mem_mb=mem_mb("positions_evaluate"),
        params:
            cfg=section_json("positions"),
            root=literal(ROOT),
            code=code_hash("star.positions.evaluate"),
        shell:
            "star positions-evaluate --positions {input.positions:q} --root {params.root:q} --manifest {input.manifest:q}"
            " --config {params.cfg:q} --out {output.report:q} > {log:q} 2>&1"
