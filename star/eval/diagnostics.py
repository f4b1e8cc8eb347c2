"""`star diagnostics`: what the synthetic world's ground truth lets us check beyond the caption metrics, per run.

    star diagnostics LABELS_ROOT --games GAMES_FILE --out results/diagnostics.csv \\
        --run STaR GT_DIR SPOTS_DIR [--run NAME GT_DIR SPOTS_DIR ...] [--bootstrap 1000] [--seed 0]

A run is a method (or STaR variant) captioned at the ground-truth anchors (GT_DIR: prediction i of a half pairs
with annotation i, `captioning_infer` with anchors `gt`) and at its own spots (SPOTS_DIR). Per run:

- side / zone: of the annotations whose caption has exactly one side word (left / right: "on the left", "from deep
  on the right", ...) or zone ("inside the box", "in the final third", ...), the share whose caption at that anchor
  says the same word; `*_commonest` is the share of always saying the test split's commonest word. The words are
  computed by the world from where play is, seen from the acting team (star/world/GRAMMAR.md).
- long_range: of the annotations whose caption states a fact that began more than `--local-s` before it (the
  world's `recalls` ground truth: the score, a first booking, what led to a corner, a spell of pressure, the count
  of changes), the share whose caption at that anchor states the same fact (the same score, the same cause, ...);
  `long_range_commonest`: always stating each kind's commonest fact. Labels without `recalls` (real SoccerNet
  labels) give n = 0.
- diversity, at the spots: distinct captions per half (mean over halves) and distinct 1- to 4-grams over the test
  split; the `annotations` row gives the same for the references.
- spotting, at the spots: each annotation is matched to the nearest unmatched spot within `--tolerance-s`;
  `spot_label` is the share of matched annotations whose spot has the annotation's label; the confusion matrix
  (annotation label x spot label, `missed` / `none` for the unmatched) goes to `<out stem>_confusion.csv` and to
  the Markdown.

Rates are x100 with a game-level bootstrap interval (`NAME_lo`, `NAME_hi`; resampling the test games as
`star evaluate` does), and `NAME_n` says how many annotations the rate is over.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from star.data.jsonio import read_json_object
from star.data.soccernet import parse_game_time, read_game_list
from star.errors import InputError
from star.data.predictions import HALVES, LABELS_FILE, PREDICTIONS_FILE, Caption, load_predictions
from star.eval.bootstrap import bootstrap_means, percentile_interval
from star.eval.tables import markdown
from star.provenance import atomic_path

ZONES = ("inside the box", "outside the box", "in the final third", "in midfield", "deep in their own half")
SIDE = re.compile(r"\b(?:on|from|down) (?:deep on )?the (left|right)\b")
# the fact a caption states, per kind of recalled fact (star.world.commentary.recalled_facts)
FACTS = {
    "score": re.compile(r"\b(\d+-\d+)\b|(goalless)"),
    "booking": re.compile(r"(earlier in this half|in the first half)"),
    "cause": re.compile(r"(tipped|tested|pushed it behind|had a go)|(foul|free kick)|(won himself)|(won by)|(injur)"),
    "pressure": re.compile(r"(half a minute|twenty seconds)"),
    "changes": re.compile(r"\b(first|second|third|fourth|fifth|sixth) change"),
}
RATES = ("side", "zone", "long_range", "spot_label")


class DiagnosticsError(InputError):
    """Runs whose predictions do not fit the annotations."""


def side(caption: str) -> str | None:
    found = set(SIDE.findall(caption))
    return found.pop() if len(found) == 1 else None


def zone(caption: str) -> str | None:
    found = [z for z in ZONES if z in caption]
    return found[0] if len(found) == 1 else None


def fact(what: str, caption: str) -> str | None:
    """The recalled fact of kind `what` that `caption` states: which alternative of its pattern matched first."""
    found = FACTS[what].search(caption)
    if not found:
        return None
    i, text = next((i, g) for i, g in enumerate(found.groups()) if g)
    return str(i) if what == "cause" else text  # a cause: which alternative (save, foul, ...), not its wording


@dataclass(frozen=True)
class Truth:
    game: str
    half: int
    seconds: int
    label: str
    caption: str
    recalls: dict | None  # {"what", "since_s"} from the world, None where the caption recalls nothing or unknown


def load_truths(labels_root: Path, game: str) -> dict[int, list[Truth]]:
    """Annotations per half, in time order (as `captioning_infer` writes its ground-truth-anchored captions)."""
    path = labels_root / game / LABELS_FILE
    data = read_json_object(path, DiagnosticsError, "labels file")
    halves: dict[int, list[Truth]] = {h: [] for h in HALVES}
    for i, ann in enumerate(data.get("annotations", [])):
        try:
            half, seconds = parse_game_time(ann["gameTime"])
            recalls = ann.get("recalls")
            halves[half].append(Truth(game, half, seconds, ann["label"], ann["anonymized"],
                                      recalls if isinstance(recalls, dict) else None))
        except (KeyError, TypeError, ValueError) as exc:
            raise DiagnosticsError(f"{path}: annotation {i}: {exc}") from None
    return {h: sorted(v, key=lambda t: t.seconds) for h, v in halves.items()}


def anchored_pairs(truths: dict[str, dict[int, list[Truth]]], run: Path) -> list[tuple[Truth, str]]:
    """(annotation, caption predicted at its anchor) for every annotation of the games."""
    out = []
    for game, halves in truths.items():
        predicted, _ = load_predictions(run / game / PREDICTIONS_FILE)
        for half in HALVES:
            pr = sorted(predicted[half], key=lambda c: c.seconds)
            if len(pr) != len(halves[half]):
                raise DiagnosticsError(f"{run / game / PREDICTIONS_FILE}: half {half} has {len(pr)} predictions for "
                                       f"{len(halves[half])} annotations; give runs captioned at the ground-truth "
                                       "anchors")
            out += list(zip(halves[half], (c.text for c in pr), strict=True))
    return out


def agreement(pairs: list[tuple[Truth, str]], word) -> tuple[list[str], list[float], float]:
    """Games and 0/1 agreements of the annotations that have a word, and the commonest-word share."""
    kept = [(t.game, word(t.caption), word(p)) for t, p in pairs if word(t.caption)]
    if not kept:
        return [], [], float("nan")
    commonest = Counter(w for _, w, _ in kept).most_common(1)[0][1] / len(kept)
    return [g for g, _, _ in kept], [float(w == p) for _, w, p in kept], commonest


def long_range(pairs: list[tuple[Truth, str]], local_s: float) -> tuple[list[str], list[float], float]:
    """Agreement on the recalled facts of annotations that recall something older than `local_s`."""
    kept = []
    for t, p in pairs:
        if t.recalls and t.recalls.get("what") in FACTS and t.recalls["since_s"] > local_s:
            what = t.recalls["what"]
            truth = fact(what, t.caption)
            if truth is not None:
                kept.append((t.game, what, truth, fact(what, p)))
    if not kept:
        return [], [], float("nan")
    per_kind = Counter((what, truth) for _, what, truth, _ in kept)
    commonest = sum(max(n for (w, _), n in per_kind.items() if w == what)
                    for what in {w for _, w, _, _ in kept}) / len(kept)
    return [g for g, *_ in kept], [float(truth == said) for _, _, truth, said in kept], commonest


def diversity(captions_per_half: list[list[str]]) -> dict:
    """Distinct captions per half (mean) and distinct n-grams (n = 1..4) over all captions (lower-cased words)."""
    out = {"captions_per_half": float(np.mean([len(set(c)) for c in captions_per_half])) if captions_per_half
           else float("nan")}
    words = [re.findall(r"[\w\[\]']+", c.lower()) for half in captions_per_half for c in half]
    for n in range(1, 5):
        out[f"distinct_{n}grams"] = len({tuple(w[i:i + n]) for w in words for i in range(len(w) - n + 1)})
    return out


def match_spots(truths: list[Truth], spots: list[Caption], tolerance_s: float) -> list[tuple[str, str]]:
    """(annotation label or 'none', spot label or 'missed') pairs of one half: greedy, nearest spot first."""
    candidates = sorted((abs(t.seconds - s.seconds), i, j) for i, t in enumerate(truths) for j, s in enumerate(spots)
                        if abs(t.seconds - s.seconds) <= tolerance_s)
    truth_to, used = {}, set()
    for _, i, j in candidates:
        if i not in truth_to and j not in used:
            truth_to[i] = j
            used.add(j)
    pairs = [(t.label, spots[truth_to[i]].label if i in truth_to else "missed") for i, t in enumerate(truths)]
    return pairs + [("none", s.label) for j, s in enumerate(spots) if j not in used]


def rate(games: list[str], values: list[float], resamples: int, seed: int, level: float = 0.95) -> dict:
    """x100 mean with its game-level bootstrap interval, and the count."""
    if not values:
        return {"": float("nan"), "_lo": float("nan"), "_hi": float("nan"), "_n": 0}
    value = 100 * float(np.mean(values))
    if not resamples:
        return {"": value, "_lo": float("nan"), "_hi": float("nan"), "_n": len(values)}
    samples = bootstrap_means(np.asarray(values, float)[:, None], games, resamples, seed)  # [B, 1]
    lo, hi = percentile_interval(samples, level)
    return {"": value, "_lo": 100 * float(lo[0]), "_hi": 100 * float(hi[0]), "_n": len(values)}


def diagnose(labels_root: str | Path, games: list[str], runs: list[tuple[str, Path, Path]], *,
             local_s: float = 15.0, tolerance_s: float = 15.0, resamples: int = 1000,
             seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per run plus the annotations' own diversity, long confusion counts: run, annotation, spot, count)."""
    labels_root = Path(labels_root)
    truths = {g: load_truths(labels_root, g) for g in games}
    rows, confusion = [], []
    reference = {"Run": "annotations", **diversity([[t.caption for t in truths[g][h]] for g in games for h in HALVES])}
    for name, gt_dir, spots_dir in runs:
        pairs = anchored_pairs(truths, Path(gt_dir))
        row: dict = {"Run": name}
        for key, (game_ids, values, commonest) in (("side", agreement(pairs, side)), ("zone", agreement(pairs, zone)),
                                                   ("long_range", long_range(pairs, local_s))):
            row.update({key + k: v for k, v in rate(game_ids, values, resamples, seed).items()})
            row[key + "_commonest"] = 100 * commonest
        halves, matched = [], []
        for game in games:
            predicted, _ = load_predictions(Path(spots_dir) / game / PREDICTIONS_FILE)
            for half in HALVES:
                halves.append([c.text for c in predicted[half]])
                matched += [(game, t, s) for t, s in match_spots(truths[game][half], predicted[half], tolerance_s)]
        row.update(diversity(halves))
        found = [(g, float(t == s)) for g, t, s in matched if t != "none" and s != "missed"]
        row.update({"spot_label" + k: v for k, v in rate([g for g, _ in found], [v for _, v in found], resamples,
                                                          seed).items()})
        counts = Counter((t, s) for _, t, s in matched)
        confusion += [{"Run": name, "annotation": t, "spot": s, "count": n} for (t, s), n in sorted(counts.items())]
        rows.append(row)
    table = pd.DataFrame.from_records(rows + [reference])
    table = table[[c for c in rows[0] if c in table] if rows else list(table)]
    counts = [c for c in table.columns if c.endswith("_n") or c.startswith("distinct_")]
    table = table.astype(dict.fromkeys(counts, "Int64"))  # counts stay whole; the annotations row has none
    return table, pd.DataFrame.from_records(confusion, columns=["Run", "annotation", "spot", "count"])


def confusion_markdown(confusion: pd.DataFrame) -> str:
    """One annotation x spot matrix per run."""
    parts = []
    for run, group in confusion.groupby("Run", sort=False):
        matrix = group.pivot_table(index="annotation", columns="spot", values="count", aggfunc="sum", fill_value=0)
        parts.append(f"#### {run}: annotation label (rows) x spot label (columns)\n\n"
                     + matrix.to_markdown())
    return "\n\n".join(parts)


def write(table: pd.DataFrame, confusion: pd.DataFrame, out_csv: str | Path) -> tuple[Path, Path]:
    """results/diagnostics.csv, its .md (rates ± interval half-width, then the confusion matrices) and
    results/diagnostics_confusion.csv, each atomically."""
    out_csv = Path(out_csv)
    out_md, out_confusion = out_csv.with_suffix(".md"), out_csv.with_name(out_csv.stem + "_confusion.csv")
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.2f")
    with atomic_path(out_confusion) as tmp:
        confusion.to_csv(tmp, index=False)
    shown = table.drop(columns=[c for c in table.columns if c.endswith("_n")])
    text = (markdown(shown) + "\n\nRates x100 ± the half-width of their game-level 95% bootstrap interval; "
            "`*_commonest`: always saying the commonest word (fact). Counts (`*_n`) are in the CSV.\n\n"
            + confusion_markdown(confusion) + "\n")
    with atomic_path(out_md) as tmp:
        tmp.write_text(text)
    return out_md, out_confusion


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels_root", type=Path, help="tree holding <game>/Labels-caption.json")
    parser.add_argument("--games", type=Path, required=True, help="file with one game path per line")
    parser.add_argument("--run", nargs=3, action="append", required=True, metavar=("NAME", "GT_DIR", "SPOTS_DIR"),
                        help="a run: its name, its predictions at the ground-truth anchors and at its spots")
    parser.add_argument("--out", type=Path, required=True,
                        help="CSV to write; the Markdown (.md) and <stem>_confusion.csv go beside it")
    parser.add_argument("--local-s", type=float, default=15.0,
                        help="a fact older than this many seconds is long-range (half the local window)")
    parser.add_argument("--tolerance-s", type=float, default=15.0, help="spot-to-annotation matching distance")
    parser.add_argument("--bootstrap", type=int, default=1000, help="game resamples of each interval (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples")


def run(args: argparse.Namespace) -> int:
    games = read_game_list(args.games)
    if not games:
        raise InputError(f"{args.games}: the game list is empty")
    runs = [(name, Path(gt), Path(spots)) for name, gt, spots in args.run]
    table, confusion = diagnose(args.labels_root, games, runs, local_s=args.local_s, tolerance_s=args.tolerance_s,
                                resamples=args.bootstrap, seed=args.seed)
    out_md, out_confusion = write(table, confusion, args.out)
    print(out_md.read_text())
    print(f"wrote {args.out}, {out_md} and {out_confusion}")
    return 0
