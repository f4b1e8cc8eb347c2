"""The official dense-captioning predictions file, `results_dense_captioning.json` (one per game): written by
captioning inference and `star caption`, read by the evaluators and diagnostics. Each prediction has `gameTime`
("H - MM:SS"), `label`, `position` (ms), `half`, `confidence` and `comment`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from star.data.jsonio import read_json_object
from star.data.soccernet import CAPTION_LABELS, format_game_time, load_labels, parse_game_time
from star.errors import InputError
from star.provenance import write_text_atomic

PREDICTIONS_FILE = "results_dense_captioning.json"
LABELS_FILE = "Labels-caption.json"
HALVES = (1, 2)


class PredictionsError(InputError):
    """Prediction files that are missing or do not follow the official `results_dense_captioning.json` format."""


@dataclass(frozen=True)
class Caption:
    seconds: int    # integer video seconds inside the half, from gameTime
    text: str
    label: str




def write_predictions(path: str | Path, game: str, predictions: Iterable[dict]) -> None:
    """Write the official prediction file of one game, atomically.

    Each prediction is a dict with `half`, `seconds`, `comment` and optionally `label` ("comments") and
    `confidence` (1.0); times are written as SoccerNet does (gameTime truncated to the second, position in ms).
    """
    rows = []
    for p in predictions:
        rows.append({
            "gameTime": format_game_time(p["half"], p["seconds"]),
            "label": p.get("label", "comments"),
            "position": str(int(p["seconds"] * 1000)),
            "half": str(p["half"]),
            "confidence": str(p.get("confidence", 1.0)),
            "comment": p["comment"],
        })
    write_text_atomic(path, json.dumps({"UrlLocal": game, "predictions": rows}, indent=1) + "\n")


def load_predictions(path: str | Path) -> tuple[dict[int, list[Caption]], Counter]:
    """Captions per half of one official prediction file, and a count of the labels outside the caption
    dictionary (those predictions are left out, as the official evaluator does)."""
    path = Path(path)
    data = read_json_object(path, PredictionsError, "predictions file")
    if not isinstance(data.get("predictions"), list):
        raise PredictionsError(f"{path}: expected an object with a 'predictions' list")
    halves: dict[int, list[Caption]] = {h: [] for h in HALVES}
    outside: Counter = Counter()
    for i, pred in enumerate(data["predictions"]):
        where = f"{path}: prediction {i}"
        if not isinstance(pred, dict):
            raise PredictionsError(f"{where} is not an object")
        missing = [k for k in ("gameTime", "label", "comment") if k not in pred]
        if missing:
            raise PredictionsError(f"{where} lacks {missing}")
        if not isinstance(pred["comment"], str):
            raise PredictionsError(f"{where}: comment is {type(pred['comment']).__name__}, not a string")
        try:
            half, seconds = parse_game_time(pred["gameTime"])
        except ValueError as exc:
            raise PredictionsError(f"{where}: {exc}") from None
        if pred["label"] not in CAPTION_LABELS:
            outside[str(pred["label"])] += 1
            continue
        halves[half].append(Caption(seconds, pred["comment"], pred["label"]))
    return halves, outside


def require_predictions(preds_root: Path, games: Sequence[str], predictions_file: str) -> None:
    """Every game of the split needs its predictions file (as the official evaluator): one error lists the missing."""
    missing = [str(preds_root / g / predictions_file) for g in games
               if not (preds_root / g / predictions_file).is_file()]
    if missing:
        raise PredictionsError(f"{len(missing)} of {len(games)} prediction files are missing:\n  "
                               + "\n  ".join(missing))


def load_game(labels_root: Path, preds_root: Path, game: str, labels_file: str, predictions_file: str):
    """Ground truths and predictions per half of one game, plus the prediction labels left out."""
    labels = load_labels(labels_root / game / labels_file)
    truths = {h: [Caption(a.seconds, a.anonymized, a.label) for a in labels.half(h)] for h in HALVES}
    preds, outside = load_predictions(preds_root / game / predictions_file)
    return truths, preds, outside
