"""The games of the configured dataset: a safe id per game, its path in the SoccerNet tree, its split.

SoccerNet game folders hold spaces, dashes and commas ("2015-05-17 - 18-00 Manchester United 1 - 1 Arsenal");
file names and Snakemake wildcards use the id instead, and the manifest maps id -> path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from star import registry
from star.data.soccernet import check_game_path, read_game_list, soccernet_split

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Game:
    id: str      # safe for file names and wildcards
    path: str    # relative to the dataset root: <league>/<season>/<game>
    split: str


def game_id(path: str) -> str:
    """A slug of the game path, e.g. 'england_epl/2014-2015/2015-05-17 - 18-00 Man Utd 1 - 1 Arsenal'
    -> 'england_epl_2014-2015_2015-05-17-18-00_man_utd_1-1_arsenal'."""
    slug = path.lower().replace(" - ", "-")
    slug = re.sub(r"[^a-z0-9-]+", "_", slug)
    return slug.strip("_-")


def soccernet_games(config: dict) -> list[tuple[str, str]]:
    """(path, split) of the games the game lists of dataset.splits name."""
    pairs = []
    for split in SPLITS:
        source = config["dataset"]["splits"].get(split)
        if source is None:
            continue
        paths = soccernet_split(split) if source == "soccernet" else read_game_list(source)
        pairs += [(p, split) for p in paths]
    if not pairs:
        raise ValueError("dataset.source is soccernet but dataset.splits names no game list")
    return pairs


def list_games(config: dict) -> list[Game]:
    """All games of the dataset named by a validated config (its registered `games` function), in split order."""
    pairs = registry.load(registry.dataset(config["dataset"]["source"]).games)(config)
    games, seen = [], {}
    for path, split in pairs:
        check_game_path(path, f"the {split} game list")
        gid = game_id(path)
        if gid in seen:
            raise ValueError(f"games {seen[gid]!r} and {path!r} map to the same id {gid!r}")
        seen[gid] = path
        games.append(Game(gid, path, split))
    return games


def write_manifest(games: list[Game], path: str | Path) -> None:
    """Tab-separated id, split, path: the map from ids back to the SoccerNet tree."""
    from star.provenance import write_text_atomic

    lines = ["id\tsplit\tpath"] + [f"{g.id}\t{g.split}\t{g.path}" for g in games]
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_manifest(path: str | Path) -> list[Game]:
    rows = Path(path).read_text().splitlines()[1:]
    return [Game(*(row.split("\t")[i] for i in (0, 2, 1))) for row in rows if row]
