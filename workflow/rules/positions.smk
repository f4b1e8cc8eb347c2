# Calibrated player positions per half at positions.fps, from one of three backends (positions.backend).

BACKEND = POSITIONS["backend"]
BACKEND_INPUT = {
    "classical": lambda w: f"results/frames/{w.game}/{w.half}.h5",
    "gamestate_json": lambda w: game_file(w.game, half_file(POSITIONS["gamestate_json"]["file"], w.half)),
    "sngamestate": lambda w: game_file(w.game, half_file(config["dataset"]["video"], w.half)),
}[BACKEND]


rule positions_localize:
    input:
        BACKEND_INPUT,
    output:
        f"results/positions/{BACKEND}/{{game}}/{{half}}.h5",
    params:
        cfg=section_json("positions"),
        code=code_hash("star.positions.localize"),
    log:
        "results/logs/positions_localize/{game}_{half}.log",
    benchmark:
        "results/benchmarks/positions_localize/{game}_{half}.tsv"
    conda:
        env("gamestate" if BACKEND == "sngamestate" else "video")
    shell:
        "{STAR} positions-localize --input {input:q} --out {output:q} --game {wildcards.game}"
        " --half {wildcards.half} --config {params.cfg:q} > {log:q} 2>&1"


if SYNTHETIC:

    rule positions_evaluate:
        input:
            positions=all_halves(f"results/positions/{BACKEND}/{{game}}/{{half}}.h5"),
            truth=[game_file(g, f"{h}_Labels-GameState.json") for g in GAMES for h in HALVES],
            cameras=[game_file(g, f"{h}_camera.json") for g in GAMES for h in HALVES],
        output:
            f"results/positions/{BACKEND}/evaluation.json",
        params:
            code=code_hash("star.positions.evaluate"),
        log:
            "results/logs/positions_evaluate.log",
        benchmark:
            "results/benchmarks/positions_evaluate.tsv"
        conda:
            env("video")
        shell:
            "{STAR} positions-evaluate --positions {input.positions:q} --truth {input.truth:q}"
            " --cameras {input.cameras:q} --out {output:q} > {log:q} 2>&1"
