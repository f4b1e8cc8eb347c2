"""`star manifest`: the games of a configuration as a table (id, split, path in the SoccerNet tree)."""

from __future__ import annotations

import json
from pathlib import Path

from star import config as star_config
from star.data.games import list_games, write_manifest


def add_arguments(parser) -> None:
    parser.add_argument("--config", nargs="+", required=True,
                        help="config YAML files (merged in order) or one inline JSON object")
    parser.add_argument("--out", required=True, help="manifest to write (.tsv)")


def run(args) -> None:
    if len(args.config) == 1 and args.config[0].lstrip().startswith("{"):
        cfg = star_config.validate(json.loads(args.config[0]))
    else:
        cfg = star_config.load(*args.config)
    games = list_games(cfg)
    write_manifest(games, Path(args.out))
    print(f"{len(games)} games -> {args.out}")
