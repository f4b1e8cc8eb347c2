"""SoccerNet-Caption formats: `Labels-caption.json`, `gameTime`, caption labels, game lists.

`gameTime` is "H - MM:SS": H the half, MM:SS the VIDEO time inside that half (not the match clock); the
official evaluator reads it as integer seconds 60*MM+SS. `position` is the same time in milliseconds, a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from star.data.jsonio import read_json_object
from star.errors import InputError

# SoccerNet's EVENT_DICTIONARY_CAPTION_V2, in its order (the official code maps every label to one class).
CAPTION_LABELS = (
    "corner", "substitution", "y-card", "whistle", "soccer-ball", "injury", "penalty",
    "yr-card", "r-card", "soccer-ball-own", "penalty-missed", "", "comments",
)
CLASSES = ("background", *CAPTION_LABELS)  # spotting targets: background first, then CAPTION_LABELS
SPOTTING_CLASSES = len(CLASSES)  # spotters' logits

_GAME_TIME = re.compile(r"^\s*([12])\s*-\s*(\d{1,3}):([0-5]\d)\s*$")


class LabelsError(InputError):
    """A labels file that is missing or does not follow the SoccerNet-Caption schema."""


def parse_game_time(text: str) -> tuple[int, int]:
    """'1 - 05:20' -> (1, 320): the half and integer seconds of video time inside it."""
    match = _GAME_TIME.match(str(text))
    if not match:
        raise ValueError(f"gameTime {text!r} is not of the form 'H - MM:SS' with H 1 or 2")
    half, minutes, seconds = (int(g) for g in match.groups())
    return half, 60 * minutes + seconds


def format_game_time(half: int, seconds: float) -> str:
    """(1, 320.7) -> '1 - 05:20' (seconds truncated, as SoccerNet writes them)."""
    whole = int(seconds)
    return f"{half} - {whole // 60:02d}:{whole % 60:02d}"


@dataclass(frozen=True)
class Annotation:
    half: int
    seconds: int            # integer video seconds inside the half, from gameTime
    position_ms: int        # from `position`
    label: str
    anonymized: str         # the training target and evaluation reference
    identified: str = ""
    description: str = ""
    visibility: str = "visible"
    important: bool = False


@dataclass
class GameLabels:
    path: Path
    meta: dict                                    # every top-level field except annotations
    annotations: list[Annotation] = field(default_factory=list)

    def half(self, half: int) -> list[Annotation]:
        return [a for a in self.annotations if a.half == half]


_REQUIRED = ("gameTime", "label", "anonymized")


def load_labels(path: str | Path) -> GameLabels:
    """Read and check a `Labels-caption.json`; errors name the file, the annotation and the field."""
    path = Path(path)
    data = read_json_object(path, LabelsError, "labels file")
    if not isinstance(data.get("annotations"), list):
        raise LabelsError(f"{path}: expected an object with an 'annotations' list")
    out = GameLabels(path=path, meta={k: v for k, v in data.items() if k != "annotations"})
    for i, ann in enumerate(data["annotations"]):
        where = f"{path}: annotation {i}"
        if not isinstance(ann, dict):
            raise LabelsError(f"{where} is not an object")
        missing = [k for k in _REQUIRED if k not in ann]
        if missing:
            raise LabelsError(f"{where} lacks {missing}")
        try:
            half, seconds = parse_game_time(ann["gameTime"])
        except ValueError as exc:
            raise LabelsError(f"{where}: {exc}") from None
        position = ann.get("position", seconds * 1000)
        try:
            position_ms = int(float(position))
        except (TypeError, ValueError):
            raise LabelsError(f"{where}: position {position!r} is not a number of milliseconds") from None
        if ann["label"] not in CAPTION_LABELS:
            raise LabelsError(f"{where}: label {ann['label']!r} is not a caption label {list(CAPTION_LABELS)}")
        if not isinstance(ann["anonymized"], str):
            raise LabelsError(f"{where}: anonymized caption is not a string")
        out.annotations.append(Annotation(
            half=half, seconds=seconds, position_ms=position_ms, label=ann["label"],
            anonymized=ann["anonymized"], identified=str(ann.get("identified", "")),
            description=str(ann.get("description", "")), visibility=str(ann.get("visibility", "visible")),
            important=bool(ann.get("important", False)),
        ))
    return out


def check_game_path(game: str, where: str) -> str:
    """A game path must stay inside the data root (and so its outputs inside results/): relative, without `..`."""
    parts = game.replace("\\", "/").split("/")
    if game.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", game) or any(p in ("..", ".") for p in parts):
        raise InputError(f"{where}: game path {game!r} must be relative to the data root, without '..' or '.' "
                         "(it would lead outside the data root and results/)")
    if any(not p.strip() for p in parts):
        raise InputError(f"{where}: game path {game!r} has an empty component")
    return game


def read_game_list(path: str | Path) -> list[str]:
    """A game list file: one game path per line (relative to the data root); blank lines and # comments skipped.
    A path that is absolute or climbs out with `..` is refused, naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: game list does not exist")
    games = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        game = line.strip()
        if game and not game.startswith("#"):
            games.append(check_game_path(game, f"{path}:{number}"))
    return games


def soccernet_split(split: str) -> list[str]:
    """The SoccerNet package's caption game list for `split` (train/valid/test/challenge)."""
    try:
        from SoccerNet.utils import getListGames
    except ImportError:
        raise RuntimeError("the SoccerNet package is needed for `soccernet` splits: pip install SoccerNet") from None
    return list(getListGames(split, task="caption"))


def sample_labels(annotations, times: np.ndarray, radius_s: float) -> np.ndarray:
    """Class index (into CLASSES) of each sample time: the nearest annotation within `radius_s`, else 0."""
    labels = np.zeros(len(times), np.int64)
    if not annotations:
        return labels
    ann_times = np.array([a.seconds for a in annotations], np.float64)
    ann_class = np.array([CLASSES.index(a.label) for a in annotations], np.int64)
    distance = np.abs(np.asarray(times, np.float64)[:, None] - ann_times[None, :])  # [N, A]
    nearest = distance.argmin(axis=1)
    within = distance[np.arange(len(times)), nearest] <= radius_s
    labels[within] = ann_class[nearest[within]]
    return labels
