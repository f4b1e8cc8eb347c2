"""The captioning subtask metric (the paper's Table 4 and the right half of Table 3): SoccerNet-Caption's
`validate_captioning` protocol (sn-caption), reproducible without nlg-eval.

- Every ground-truth annotation of the split is captioned once (`star captioning-infer --labels`: one prediction
  at each annotation's gameTime); caption k at a (half, second) pairs with the k-th annotation there.
- Each caption has one reference, the annotation's `anonymized` text. Text is only stripped (no PTB tokenizer, no
  lower-casing, non-ASCII kept), as nlg-eval's `NLGEval.compute_metrics(ref_list=[refs], hyp_list=hyps)` does.
- The whole split is one corpus: BLEU-1..4 from summed statistics ("closest" reference length), METEOR 1.5
  (`-norm`) over the corpus's aggregated statistics, ROUGE-L averaged over captions, CIDEr-D with the corpus's own
  IDF: nlg-eval's copies of the coco-caption scorers, which pycocoevalcap's are (star.eval.scorers, and the METEOR
  JVM of star.eval.dvc).
There is no Recall, Precision or F1: every annotation has its caption. Control characters inside a caption are
sent to METEOR as spaces (its line protocol would break, as nlg-eval's does).
Uncertainty (`bootstrap=N`): each of N seeded resamples of the games (with replacement) is scored as a corpus of
its games' captions, the same way; the percentiles give the interval (`ci`, as the dense protocol's).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from star.data.soccernet import format_game_time, load_labels
from star.data.predictions import LABELS_FILE, PREDICTIONS_FILE, PredictionsError, load_predictions, require_predictions
from star.eval.bootstrap import percentile_interval, resample_counts
from star.eval.dvc import CAPTION_METRICS, shared_evaluator

PROTOCOL = "captioning"


def game_pairs(labels_path: Path, predictions_path: Path) -> tuple[list[tuple[str, str]], Counter]:
    """(stripped caption, stripped reference) of every annotation of one game, in the labels' order, and the
    prediction labels outside the caption dictionary (left out, as the dense evaluator does)."""
    labels = load_labels(labels_path)
    predictions, outside = load_predictions(predictions_path)
    captions: dict[tuple[int, int], list[str]] = defaultdict(list)
    for half, preds in predictions.items():
        for pred in preds:
            captions[half, pred.seconds].append(pred.text)
    pairs, used = [], Counter()
    for a in labels.annotations:
        key = (a.half, a.seconds)
        if used[key] >= len(captions[key]):
            raise PredictionsError(f"{predictions_path}: no caption for the annotation at "
                                   f"{format_game_time(a.half, a.seconds)!r} (the captioning protocol needs one "
                                   f"per ground-truth annotation: star captioning-infer --labels)")
        pairs.append((captions[key][used[key]].strip(), a.anonymized.strip()))
        used[key] += 1
    extra = {k: len(v) - used[k] for k, v in captions.items() if len(v) > used[k]}
    if extra:
        (half, seconds), n = next(iter(extra.items()))
        raise PredictionsError(f"{predictions_path}: {sum(extra.values())} captions at no annotation's time "
                               f"(first: {n} at {format_game_time(half, seconds)!r})")
    return pairs, outside


def score_corpus(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr of one corpus of (caption, reference), nlg-eval's way."""
    if not pairs:
        raise ValueError("no caption to score")
    return shared_evaluator().score_corpora([pairs], progress=None)[0]


def bootstrap_corpora(per_game: list[list[tuple[str, str]]], resamples: int, level: float, seed: int) -> dict:
    """Percentile intervals of the corpus metrics over `resamples` resamples of the games (a drawn game brings all
    its captions); every resample is one corpus, scored as the whole split is (CIDEr with that corpus's IDF)."""
    counts = resample_counts(len(per_game), resamples, seed)  # [B, games]
    corpora = [[pair for game, n in zip(per_game, row, strict=True) for _ in range(n) for pair in game]
               for row in counts]
    evaluator = shared_evaluator()
    scored = evaluator.score_corpora(corpora, progress=None, cider=False)
    for s, value in zip(scored, evaluator.text.cider_d_resampled(per_game, counts), strict=True):
        s["CIDEr"] = float(value)
    lo, hi = percentile_interval(np.array([[s[k] for k in CAPTION_METRICS] for s in scored]), level)
    return {"level": level, "resamples": resamples, "unit": "game", "units": len(per_game),
            "metrics": {k: [float(a), float(b)] for k, a, b in zip(CAPTION_METRICS, lo, hi, strict=True)}}


def evaluate_captioning(labels_root: str | Path, preds_root: str | Path, games: Sequence[str], *,
                        labels_file: str = LABELS_FILE, predictions_file: str = PREDICTIONS_FILE,
                        bootstrap: int = 0, ci: float = 0.95, seed: int = 0) -> dict:
    """Captioning-subtask metrics of `games` (paths relative to both roots): {"protocol", "window": None,
    "metrics", "counts"}."""
    labels_root, preds_root = Path(labels_root), Path(preds_root)
    require_predictions(preds_root, games, predictions_file)
    pairs, per_game, outside = [], [], Counter()
    for game in games:
        game_pairs_, left_out = game_pairs(labels_root / game / labels_file, preds_root / game / predictions_file)
        pairs += game_pairs_
        per_game.append(game_pairs_)
        outside += left_out
    metrics = score_corpus(pairs)
    counts = {"games": len(games), "captions": len(pairs), "distinct_captions": len({h for h, _ in pairs}),
              "empty_captions": sum(not h for h, _ in pairs),
              "predictions_outside_dictionary": dict(sorted(outside.items()))}
    result = {"protocol": PROTOCOL, "window": None, "metrics": {k: metrics[k] for k in CAPTION_METRICS},
              "counts": counts}
    if bootstrap:
        result["ci"] = bootstrap_corpora(per_game, bootstrap, ci, seed)
    return result
