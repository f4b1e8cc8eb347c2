"""SoccerNet dense-captioning metrics with the official evaluator's semantics (SoccerNet 0.2.0,
`DenseVideoCaptioning.py`), reproducible run to run and robust where the official one fails.

Per half of each game:
- a caption at integer second t (from `gameTime`) spans [t - w//2, t + w//2 + w%2) for a window w (30 = "@30",
  5 = "tight"); a (prediction, ground truth) pair counts when the spans overlap (tIoU > 0), that is |dt| < w.
  Pairs are many-to-many; a prediction overlapping no ground truth is paired with a random 10-20 letter string,
  drawn from a generator seeded by (seed, game, half), so reruns are byte-identical.
- Text: non-ASCII characters become spaces, the Stanford PTB tokenizer lower-cases and splits, punctuation
  tokens are dropped; pycocoevalcap's Bleu(4) ("closest" reference length), METEOR 1.5, ROUGE-L and CIDEr-D then
  score the half's pairs as one corpus (CIDEr's IDF is per half).
- Recall: share of ground truths overlapped by a prediction; Precision: share of predictions overlapping one.
Every metric is averaged over halves; F1 = 2PR/(P+R) of the averages (the STaR paper's F1).
Uncertainty (`bootstrap=N`): percentile intervals from N resamples of the test games with replacement (both halves
of a drawn game together; `bootstrap_unit="half"` resamples halves), seeded by `seed`, so reruns are identical.

Where the official evaluator crashes or drops silently:
- a half with no predictions scores 0 everywhere (what the official gives when it does not crash);
- a half without ground truth but with predictions counts in every average except Recall (nothing to recall);
  its predictions are all unmatched. A half with neither is skipped;
- predictions whose label is outside the caption dictionary are left out as officially, but counted and reported;
- all missing prediction files are listed in one error; control characters (newlines, form feeds) in a
  caption become spaces, so they cannot shift the tokenizer's or METEOR's line protocol.

Speed: every distinct caption is tokenized in one PTB call; one METEOR JVM per Evaluator (one per process through
`evaluate`) computes each distinct (prediction, reference) pair's statistics once, through a pipe, while BLEU,
ROUGE-L and CIDEr run in Python; each half's METEOR is then one `SING` line on its aggregated statistics (the
number the official per-half `EVAL` gives, without its per-segment lines).
"""

from __future__ import annotations

import atexit
import functools
import random
import string
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from star.data.predictions import HALVES, LABELS_FILE, PREDICTIONS_FILE, Caption, load_game, require_predictions
from star.eval.bootstrap import bootstrap_means, percentile_interval
from star.eval.java import MeteorJVM, clean, find_java, ptb_tokenize
from star.eval.scorers import TextScorer

METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "Recall", "Precision", "F1")
CAPTION_METRICS = METRICS[:7]
BOOTSTRAP_UNITS = ("game", "half")  # what a bootstrap resample draws


# ---------------------------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------------------------
# matching


def overlaps(pred_seconds: Sequence[int], gt_seconds: Sequence[int], window: int) -> np.ndarray:
    """[P, G] bool: the caption spans overlap (tIoU > 0). Both spans are `window` long, so that is |dt| < window."""
    dt = np.subtract.outer(np.asarray(pred_seconds, dtype=np.int64), np.asarray(gt_seconds, dtype=np.int64))
    return np.abs(dt) < window


def noise_caption(rng: random.Random) -> str:
    """The reference an unmatched prediction is scored against: 10-20 random lowercase letters."""
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(10, 20)))


@dataclass
class HalfMatch:
    game: str
    half: int
    n_pred: int
    gt_labels: list[str]                      # [G]
    gt_covered: np.ndarray                    # [G] bool
    pred_covered: np.ndarray                  # [P] bool
    pairs: list[tuple[str, str, str | None]]  # (prediction, reference, ground-truth label; None for noise)

    @property
    def n_gt(self) -> int:
        return len(self.gt_labels)


def match_half(game: str, half: int, truths: list[Caption], preds: list[Caption], window: int,
               seed: int) -> HalfMatch:
    """Pairs of one half, in the official order: predictions then ground truths, each by time (stable)."""
    truths = sorted(truths, key=lambda c: c.seconds)
    preds = sorted(preds, key=lambda c: c.seconds)
    hits = overlaps([p.seconds for p in preds], [t.seconds for t in truths], window)  # [P, G]
    rng = random.Random(f"{seed}:{game}:{half}")  # str seeds hash deterministically (sha512)
    pairs = []
    for pred, row in zip(preds, hits, strict=True):
        matched = np.flatnonzero(row)
        if matched.size:
            pairs += [(pred.text, truths[g].text, truths[g].label) for g in matched]
        else:
            pairs.append((pred.text, noise_caption(rng), None))
    return HalfMatch(game, half, len(preds), [t.label for t in truths], hits.any(axis=0), hits.any(axis=1), pairs)


# ---------------------------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------------------------
# the evaluator


class Evaluator:
    """Dense-captioning metrics; holds one METEOR JVM for its lifetime (its start costs 10-40 s), so keep one
    instance (or use `evaluate`, which keeps one per process)."""

    def __init__(self):
        self.java = find_java()
        self.meteor = MeteorJVM()
        self.text = TextScorer()
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.meteor.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def tokenize(self, texts: Iterable[str]) -> None:
        """Tokenize every text not seen yet, in one PTB call."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._tokens))
        cleaned = [clean(t) for t in todo]
        blank = [not c.strip() for c in cleaned]
        tokens = iter(ptb_tokenize([c for c, b in zip(cleaned, blank, strict=True) if not b], self.java))
        for text, is_blank in zip(todo, blank, strict=True):
            self._tokens[text] = "" if is_blank else next(tokens)

    def score_corpora(self, corpora: list[list[tuple[str, str]]], progress: bool | None,
                      cider: bool = True) -> list[dict[str, float]]:
        """Caption metrics of each corpus (CIDEr left out if not `cider`); METEOR runs in its JVM while Python
        scores the rest."""
        names = [m for m in CAPTION_METRICS if cider or m != "CIDEr"]
        with ThreadPoolExecutor(max_workers=1) as pool:
            meteor_stats = pool.submit(self.meteor.cache_stats, [p for c in corpora for p in c], progress)
            scored = [self.text.scores(c, cider) if c else dict.fromkeys(names, 0.0) for c in corpora]
            meteor_stats.result()
        non_empty = [i for i, c in enumerate(corpora) if c]
        for i, value in zip(non_empty, self.meteor.scores([corpora[i] for i in non_empty]), strict=True):
            scored[i]["METEOR"] = value
        for s in scored:
            s.setdefault("METEOR", 0.0)
        return scored

    # -- evaluation ------------------------------------------------------------------------------------------

    def evaluate(self, labels_root: str | Path, preds_root: str | Path, games: Sequence[str], window: int = 30,
                 seed: int = 0, *, labels_file: str = LABELS_FILE, predictions_file: str = PREDICTIONS_FILE,
                 per_label: bool = False, bootstrap: int = 0, ci: float = 0.95, bootstrap_unit: str = "game",
                 progress: bool | None = None) -> dict:
        """Metrics of the predictions under `preds_root` against the labels under `labels_root`, for `games`
        (paths relative to both roots). Returns {"metrics", "counts", "halves", ...}; see `summarize`."""
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer number of seconds, not {window!r}")
        if not games:
            raise ValueError("no games to evaluate")
        if bootstrap < 0 or not 0 < ci < 1 or bootstrap_unit not in BOOTSTRAP_UNITS:
            raise ValueError(f"bootstrap must be >= 0, ci in (0, 1) and the unit one of {BOOTSTRAP_UNITS}, not "
                             f"{bootstrap}, {ci} and {bootstrap_unit!r}")
        labels_root, preds_root = Path(labels_root), Path(preds_root)
        require_predictions(preds_root, games, predictions_file)
        matches, outside = [], Counter()
        for game in games:
            truths, preds, left_out = load_game(labels_root, preds_root, game, labels_file, predictions_file)
            outside += left_out
            matches += [match_half(game, h, truths[h], preds[h], window, seed) for h in HALVES
                        if truths[h] or preds[h]]
        if outside:
            warnings.warn(f"{sum(outside.values())} predictions have labels outside the caption dictionary and "
                          f"were left out: {dict(outside)}", stacklevel=2)

        self.tokenize(text for m in matches for pair in m.pairs for text in pair[:2])
        corpora = [[(self._tokens[h], self._tokens[r]) for h, r, _ in m.pairs] for m in matches]
        labels = sorted({lab for m in matches for lab in m.gt_labels}) if per_label else []
        label_corpora = [[(self._tokens[h], self._tokens[r]) for m in matches for h, r, lab in m.pairs if lab == L]
                         for L in labels]
        scored = self.score_corpora(corpora + label_corpora, progress)

        result = summarize(len(games), matches, scored[: len(matches)], window, seed, outside)
        if per_label:
            result["per_label"] = label_summary(matches, labels, scored[len(matches):])
        if bootstrap:
            result["ci"] = bootstrap_ci(result["halves"], bootstrap, ci, seed, bootstrap_unit)
        return result


# ---------------------------------------------------------------------------------------------------------------
# averages, per-label scores, bootstrap


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def summarize(n_games: int, matches: list[HalfMatch], scored: list[dict], window: int, seed: int,
              outside: Counter) -> dict:
    """Per-half rows and their averages."""
    halves = []
    for m, s in zip(matches, scored, strict=True):
        halves.append({
            "game": m.game, "half": m.half, "ground_truths": m.n_gt, "predictions": m.n_pred,
            "pairs": len(m.pairs), "unmatched_predictions": int(m.n_pred - m.pred_covered.sum()),
            **{k: s[k] for k in CAPTION_METRICS},
            "Recall": float(m.gt_covered.mean()) if m.n_gt else None,  # nothing to recall
            "Precision": float(m.pred_covered.mean()) if m.n_pred else 0.0,
        })
    metrics = {k: _mean([h[k] for h in halves]) for k in (*CAPTION_METRICS, "Recall", "Precision")}
    metrics["F1"] = f1(metrics["Precision"], metrics["Recall"])
    counts = {
        "games": n_games,
        "halves": len(halves),
        "halves_without_ground_truth": sum(m.n_gt == 0 for m in matches),
        "halves_without_predictions": sum(m.n_pred == 0 for m in matches),
        "ground_truths": sum(m.n_gt for m in matches),
        "predictions": sum(m.n_pred for m in matches),
        "pairs": sum(len(m.pairs) for m in matches),
        "unmatched_predictions": sum(h["unmatched_predictions"] for h in halves),
        "predictions_outside_dictionary": dict(sorted(outside.items())),
    }
    return {"window": window, "seed": seed, "metrics": metrics, "counts": counts, "halves": halves}


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else 0.0


def label_summary(matches: list[HalfMatch], labels: list[str], scored: list[dict]) -> dict:
    """Per ground-truth label: caption metrics over that label's matched pairs pooled over halves (one corpus,
    so not comparable to the per-half averages), and Recall over that label's ground truths."""
    out = {}
    for label, s in zip(labels, scored, strict=True):
        is_label = [np.array(m.gt_labels) == label for m in matches]  # [G] per half
        n_gt = sum(int(x.sum()) for x in is_label)
        covered = sum(int(m.gt_covered[x].sum()) for m, x in zip(matches, is_label, strict=True))
        out[label] = {"ground_truths": n_gt, "pairs": sum(lab == label for m in matches for *_, lab in m.pairs),
                      **{k: s[k] for k in CAPTION_METRICS}, "Recall": covered / n_gt}
    return out


def bootstrap_ci(halves: list[dict], resamples: int, level: float, seed: int, unit: str = "game") -> dict:
    """Percentile confidence intervals of the averaged metrics: resample games (`unit` "game": both halves of a
    drawn game come together, as a game's halves share teams and commentary) or halves with replacement, and
    average each resample's halves as the point estimate averages them."""
    if unit not in BOOTSTRAP_UNITS:
        raise ValueError(f"bootstrap unit must be one of {BOOTSTRAP_UNITS}, not {unit!r}")
    keys = (*CAPTION_METRICS, "Recall", "Precision")
    # [H, K]; Recall is missing where a half has no ground truth, and the average skips it
    table = np.array([[np.nan if h[k] is None else h[k] for k in keys] for h in halves], dtype=float)
    groups = [h["game"] for h in halves] if unit == "game" else list(range(len(halves)))
    means = bootstrap_means(table, groups, resamples, seed)  # [B, K]
    p, r = means[:, keys.index("Precision")], means[:, keys.index("Recall")]
    f1s = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)
    lo, hi = percentile_interval(np.column_stack([means, f1s]), level)  # [K + 1] each
    return {"level": level, "resamples": resamples, "unit": unit, "units": len(set(groups)),
            "metrics": {k: [float(a), float(b)] for k, a, b in zip((*keys, "F1"), lo, hi, strict=True)}}


# ---------------------------------------------------------------------------------------------------------------
# the process-wide evaluator


@functools.cache
def shared_evaluator() -> Evaluator:
    """One Evaluator (one METEOR JVM) per process."""
    evaluator = Evaluator()
    atexit.register(evaluator.close)
    return evaluator


def evaluate(labels_root: str | Path, preds_root: str | Path, games: Sequence[str], window: int = 30,
             seed: int = 0, **options) -> dict:
    """Dense-captioning metrics (see `Evaluator.evaluate`), with the process's shared METEOR JVM."""
    return shared_evaluator().evaluate(labels_root, preds_root, games, window, seed, **options)
