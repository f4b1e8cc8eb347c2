"""The synthetic world as a dataset (star/registry.py): its games, planned from the config without reading a file."""

from __future__ import annotations

from star.world.plan import plan_games


def synthetic_games(config: dict) -> list[tuple[str, str]]:
    """(path, split) of the synthetic world's games, in split order."""
    return [(g.path, g.split) for g in plan_games(config["world"], config["seed"])]
