"""A miniature dataset for the model stages: a manifest, Labels-caption.json per game, and features and positions
caches per half whose values tell their own sample index (features[i, 0] == i, xy[i, slot] == (i, slot))."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from star.data.cache import POSITIONS_FORMAT, write_cache
from star.data.games import Game, write_manifest

CAPTIONS = {
    "corner": "[PLAYER] ([TEAM]) takes the corner from the left but [PLAYER] comes out and claims it.",
    "y-card": "[PLAYER] ([TEAM]) goes into the book for a late challenge on [PLAYER].",
    "whistle": "[REFEREE] blows the whistle and [TEAM] kick off.",
}
EVENTS = ((5, "whistle"), (20, "corner"), (41, "y-card"))  # (second, label) in every half


def features_of(length: int, dim: int, half: int) -> np.ndarray:
    """Row i starts with i (its index) and carries a bump shared by the frames around each event."""
    rng = np.random.default_rng(half)
    x = rng.normal(size=(length, dim)).astype(np.float32) * 0.1
    x[:, 0] = np.arange(length)
    for k, (second, _) in enumerate(EVENTS):
        x[max(0, second - 2):second + 3, 1 + k] += 3.0
    return x


def write_store(root: Path, length: int = 60, dim: int = 16, fps: float = 1.0, positions_fps: float = 1.0,
                players: int = 4, splits=("train", "valid", "test")) -> dict:
    """One game per split under `root`; returns the paths the stages take."""
    games = [Game(f"game_{split}", f"league/2030/{split} game", split) for split in splits]
    write_manifest(games, root / "games.tsv")
    for game in games:
        annotations = [{"gameTime": f"{h} - 00:{s:02d}", "label": label, "anonymized": CAPTIONS[label]}
                       for h in (1, 2) for s, label in EVENTS]
        folder = root / "world" / game.path
        folder.mkdir(parents=True)
        (folder / "Labels-caption.json").write_text(json.dumps({"annotations": annotations}))
        for h in (1, 2):
            n = int(length * fps)
            write_cache(root / "features" / game.id / f"{h}.h5", "features", {"features": features_of(n, dim, h)},
                        {"stage": "test"}, game=game.id, half=h, fps=fps, dim=dim, encoder="test")
            m = int(length * positions_fps)
            xy = np.stack(np.broadcast_arrays(np.arange(m)[:, None], np.arange(players)[None, :]), -1)
            mask = np.ones((m, players), bool)
            mask[:, -1] = False  # the last slot is always empty
            write_cache(root / "positions" / game.id / f"{h}.h5", "positions",
                        {"xy": xy.astype(np.float32), "team": np.zeros((m, players)), "role": np.zeros((m, players)),
                         "mask": mask, "calibrated": np.ones(m, bool), "jersey": np.full((m, players), -1),
                         "ball": np.stack([np.arange(m) % 50, np.zeros(m)], -1), "ball_visible": np.arange(m) % 3 > 0},
                        {"stage": "test"}, game=game.id, half=h, fps=positions_fps, backend="test",
                        max_players=players, format=POSITIONS_FORMAT)
    return {"root": root, "games": games, "manifest": root / "games.tsv", "labels_root": root / "world",
            "features": root / "features", "positions": root / "positions"}
