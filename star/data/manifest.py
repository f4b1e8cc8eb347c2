"""`star manifest`: the games of a configuration as a table (id, split, path in the SoccerNet tree), or one split's
game paths, one a line (the list `star evaluate --games` reads):

    star manifest --config config.yaml --out results/dataset/games.tsv
    star manifest --manifest results/dataset/games.tsv --split test --out results/dataset/test_games.txt
"""

from __future__ import annotations

import json
from pathlib import Path

from star import config as star_config
from star.data.games import list_games, read_manifest, write_manifest
from star.errors import InputError
from star.provenance import write_text_atomic


def add_arguments(parser) -> None:
    parser.add_argument("--config", nargs="+",
                        help="config YAML files (merged in order) or one inline JSON object")
    parser.add_argument("--manifest", help="read the games from this manifest (.tsv) instead of a config")
    parser.add_argument("--split", choices=["train", "valid", "test"],
                        help="write only this split's game paths, one a line")
    parser.add_argument("--out", required=True, help="manifest (.tsv) or, with --split, game list to write")


def run(args) -> None:
    if args.manifest:
        if not Path(args.manifest).is_file():
            raise InputError(f"{args.manifest}: manifest not found")
        games = read_manifest(args.manifest)
    elif not args.config:
        raise InputError("give --config (the games of a configuration) or --manifest (a manifest .tsv)")
    elif len(args.config) == 1 and args.config[0].lstrip().startswith("{"):
        games = list_games(star_config.validate(json.loads(args.config[0])))
    else:
        games = list_games(star_config.load(*args.config))
    if args.split:
        paths = [g.path for g in games if g.split == args.split]
        write_text_atomic(args.out, "".join(f"{p}\n" for p in paths))
        print(f"{len(paths)} {args.split} games -> {args.out}")
        return
    write_manifest(games, Path(args.out))
    print(f"{len(games)} games -> {args.out}")
