# The synthetic broadcast world (the embedded default dataset), written as a SoccerNet tree under dataset.root.
# One job per game: its folder holds Labels-caption.json, the half videos, Game State ground truth and cameras.

# the world depends on the seed, the world section and the video file name only
WORLD_CFG = literal(
    star_config.to_json(
        {
            "seed": config["seed"],
            "world": config["world"],
            "dataset": {"video": config["dataset"]["video"]},
        }
    )
)

if SYNTHETIC:

    rule world_synthesize:
        output:
            labels=f"{ROOT}/{{gamepath}}/{config['dataset']['labels']}",
            videos=[
                f"{ROOT}/{{gamepath}}/{half_file(config['dataset']['video'], h)}"
                for h in HALVES
            ],
            gamestate=[f"{ROOT}/{{gamepath}}/{h}_Labels-GameState.json" for h in HALVES],
            cameras=[f"{ROOT}/{{gamepath}}/{h}_camera.json" for h in HALVES],
        log:
            "results/logs/world_synthesize/{gamepath}.log",
        benchmark:
            "results/benchmarks/world_synthesize/{gamepath}.tsv"
        wildcard_constraints:
            gamepath="|".join(re.escape(g.path) for g in GAMES.values()),
        conda:
            env("video")
        resources:
            mem_mb=mem_mb("world_synthesize"),
        params:
            cfg=WORLD_CFG,
            root=literal(ROOT),
            code=code_hash("star.world.synthesize"),
        shell:
            "star world --config {params.cfg:q} --root {params.root:q} --only {wildcards.gamepath:q} > {log:q} 2>&1"

    rule world_splits:
        output:
            splits=expand(
                f"{ROOT}/splits/{{split}}.txt", split=("train", "valid", "test")
            ),
        log:
            "results/logs/world_splits.log",
        benchmark:
            "results/benchmarks/world_splits.tsv"
        conda:
            env("video")
        resources:
            mem_mb=mem_mb("world_splits"),
        params:
            cfg=WORLD_CFG,
            root=literal(ROOT),
            code=code_hash("star.world.synthesize"),
        shell:
            "star world --config {params.cfg:q} --root {params.root:q} --splits-only > {log:q} 2>&1"
