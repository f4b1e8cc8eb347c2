"""Do the captions say *where*? Agreement of the spatial words of ground-truth-anchored captions (Table 4's runs)
with their annotation's, per run, against always guessing the test split's commonest word.

    python bench/spatial_words.py LABELS_ROOT GAMES_FILE RUN_DIR [RUN_DIR ...]

RUN_DIR holds `<game path>/results_dense_captioning.json` written at the annotations (`captioning_infer` with
anchors `gt`), so prediction i of a half pairs with annotation i. Two word families of the synthetic world's
grammar (star/world/GRAMMAR.md), which a model can only get right from where play is (positions) and which way the
acting team attacks: the *side* (left / right, as in "on the left", "from deep on the right") and the *zone*
("inside the box", "outside the box", "in the final third", "in midfield", "deep in their own half").
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from star.data.soccernet import load_labels, read_game_list
from star.eval.dvc import load_predictions

ZONES = ("inside the box", "outside the box", "in the final third", "in midfield", "deep in their own half")
SIDE = re.compile(r"\b(?:on|from|down) (?:deep on )?the (left|right)\b")


def side(caption: str) -> str | None:
    found = set(SIDE.findall(caption))
    return found.pop() if len(found) == 1 else None


def zone(caption: str) -> str | None:
    found = [z for z in ZONES if z in caption]
    return found[0] if len(found) == 1 else None


def pairs(labels_root: Path, games: list[str], run: Path) -> list[tuple[str, str]]:
    """(annotation caption, predicted caption) at every annotation of the games."""
    out = []
    for game in games:
        truth = load_labels(labels_root / game / "Labels-caption.json")
        predicted, _ = load_predictions(run / game / "results_dense_captioning.json")
        for half in (1, 2):
            gt = sorted((a for a in truth.annotations if a.half == half), key=lambda a: a.seconds)
            pr = sorted(predicted[half], key=lambda c: c.seconds)
            if len(gt) != len(pr):
                sys.exit(f"{run / game}: half {half} has {len(pr)} predictions for {len(gt)} annotations; "
                         "pass runs captioned at the ground-truth anchors")
            out += [(a.anonymized, c.text) for a, c in zip(gt, pr, strict=True)]
    return out


def agreement(pairs_: list[tuple[str, str]], words) -> tuple[float, float, int]:
    """(share of annotations with a word whose prediction says the same word, commonest-word share, count)."""
    truth = [(words(gt), words(pred)) for gt, pred in pairs_ if words(gt)]
    if not truth:
        return float("nan"), float("nan"), 0
    common = Counter(t for t, _ in truth).most_common(1)[0][1]
    return sum(t == p for t, p in truth) / len(truth), common / len(truth), len(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels_root", type=Path)
    parser.add_argument("games", type=Path, help="one game path per line")
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    games = read_game_list(args.games)
    print("| run | side agrees | (commonest side) | zone agrees | (commonest zone) |\n|---|---|---|---|---|")
    for run in args.runs:
        found = pairs(args.labels_root, games, run)
        (s, s0, ns), (z, z0, nz) = agreement(found, side), agreement(found, zone)
        print(f"| {run} | {s:.2f} of {ns} | {s0:.2f} | {z:.2f} of {nz} | {z0:.2f} |")


if __name__ == "__main__":
    main()
