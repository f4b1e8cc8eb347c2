"""`star evaluate --protocol captioning` at SoccerNet's test-split size against nlg-eval's way of scoring it.

    .venv/bin/python bench/bench_captioning_protocol.py [--games 98] [--seed 0]

Builds 98 synthetic test games (7644 annotations in SoccerNet's anonymized style) with one caption per annotation,
then times `star.eval.captioning.evaluate_captioning` and the reference: pycocoevalcap's Bleu(4), Meteor, Rouge and
Cider `compute_score` on the dicts nlg-eval's `compute_metrics` builds (one stripped reference per caption). Prints
wall and CPU time of each (CPU includes the METEOR JVMs), their ratio and the largest metric difference.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_evaluate import GT_PER_HALF, HALF_S, caption, cpu_seconds
from star.data.soccernet import CAPTION_LABELS, format_game_time
from star.eval.captioning import evaluate_captioning
from star.data.predictions import write_predictions


def make_split(root: Path, n_games: int, seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Labels and ground-truth-anchored predictions; returns the games and the (caption, reference) pairs."""
    rng = random.Random(seed)
    games, pairs = [f"synthetic_league/2024-2025/game {i:03d}" for i in range(n_games)], []
    for game in games:
        annotations, predictions = [], []
        for half in (1, 2):
            for t in sorted(rng.randrange(HALF_S) for _ in range(GT_PER_HALF)):
                ref, hyp = caption(rng), caption(rng)
                annotations.append({"gameTime": format_game_time(half, t), "label": rng.choice(CAPTION_LABELS),
                                    "position": str(t * 1000), "anonymized": ref})
                predictions.append({"half": half, "seconds": t, "label": "comments", "comment": hyp})
                pairs.append((hyp.strip(), ref.strip()))
        (root / "labels" / game).mkdir(parents=True)
        (root / "labels" / game / "Labels-caption.json").write_text(json.dumps({"annotations": annotations}))
        write_predictions(root / "preds" / game / "results_dense_captioning.json", game, predictions)
    return games, pairs


def nlgeval_way(pairs: list[tuple[str, str]]) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    refs = {i: [r] for i, (_, r) in enumerate(pairs)}
    hyps = {i: [h] for i, (h, _) in enumerate(pairs)}
    out = {}
    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    out.update({f"Bleu_{k + 1}": b for k, b in enumerate(bleu)})
    meteor = Meteor()
    out["METEOR"], _ = meteor.compute_score(refs, hyps)
    del meteor  # kills and reaps its JVM: its CPU time joins this process's children's
    out["ROUGE_L"], _ = Rouge().compute_score(refs, hyps)
    out["CIDEr"], _ = Cider().compute_score(refs, hyps)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=98)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        games, pairs = make_split(root, args.games, args.seed)
        print(f"{len(games)} games, {len(pairs)} captions")
        wall, cpu = time.perf_counter(), cpu_seconds()
        ours = evaluate_captioning(root / "labels", root / "preds", games)
        from star.eval.dvc import shared_evaluator

        ours_cpu = cpu_seconds(shared_evaluator().meteor.pid) - cpu
        ours_wall = time.perf_counter() - wall
        wall, cpu = time.perf_counter(), cpu_seconds()
        reference = nlgeval_way(pairs)
        ref_wall, ref_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    diff = max(abs(ours["metrics"][k] - reference[k]) for k in reference)
    print(f"star: {ours_wall:.1f} s wall / {ours_cpu:.1f} s CPU; nlg-eval's way: {ref_wall:.1f} s / {ref_cpu:.1f} s; "
          f"ratio {ours_wall / ref_wall:.2f} / {ours_cpu / ref_cpu:.2f}; largest difference {diff:.1e}")
    print(" ".join(f"{k} {100 * v:.2f}" for k, v in ours["metrics"].items()))


if __name__ == "__main__":
    main()
