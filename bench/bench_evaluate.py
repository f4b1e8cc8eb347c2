"""Time `star.evaluate` against SoccerNet's official dense-captioning evaluator on a SoccerNet-size synthetic
test split (98 games, ~7.6k ground truths, ~10k predictions), in one process, and print both times, their
ratio and the largest metric difference.

    .venv/bin/python bench/bench_evaluate.py [--games 98] [--window 30] [--seed 0]

The official evaluator's game list is patched to the synthetic games; SODA is left out (its CIDEr is always 0).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SoccerNet.Evaluation import DenseVideoCaptioning as official

from star.data.soccernet import CAPTION_LABELS, format_game_time
from star.data.predictions import write_predictions
from star.eval.dvc import METRICS, Evaluator, f1

HALF_S = 2735            # SoccerNet's mean half length
GT_PER_HALF = 39         # 7.6k ground truths over 196 halves
PRED_PER_HALF = 51       # 10k predictions over 196 halves

# Caption pieces in SoccerNet's anonymized style (captions of ~20-25 words, as the real ones); predictions draw from
# the same pieces, so scores are neither 0 nor 1.
SUBJECTS = ["[PLAYER] ([TEAM])", "[PLAYER]", "[TEAM]", "[COACH] ([TEAM])", "[REFEREE]", "The goalkeeper",
            "The defender", "The substitute", "The visitors", "The hosts"]
ACTIONS = [
    "takes the corner kick and swings it into the crowded penalty area", "is shown a yellow card for a rough tackle",
    "scores a fine goal from close range after a lovely team move", "is replaced by [PLAYER] in a tactical change",
    "blows the whistle to signal the end of the first half", "goes down injured after a strong challenge",
    "fires a powerful shot from the edge of the box", "makes a comfortable save to keep the score level",
    "sends a long pass towards the far post", "concedes a free kick in a dangerous position",
    "heads the ball over the crossbar from a promising position", "is caught offside as the attack breaks down",
    "latches on to a precise through ball and drives forward", "whips in a cross that nobody manages to reach",
    "brings down an opponent just outside the box", "wins the ball back in midfield and starts a counter attack",
    "converts the penalty with a calm finish into the bottom right corner", "receives a second booking and is sent off",
    "makes a substitution to bring fresh legs onto the pitch", "clears the danger with a hasty header",
    "sees his effort blocked by a defender", "tries his luck from distance",
    "puts the ball into his own net by mistake", "misses the penalty as the keeper guesses the right way",
    "protests to the referee after a decision",
]
DETAILS = ["", "", "", " but it goes well wide of the left post", " but the goalkeeper is equal to it",
           " and the ball goes out for a throw-in", " after a neat one-two on the right flank",
           " following a quick free kick", " in the last minute of added time", " from twenty yards out",
           " and the linesman raises his flag"]
REMARKS = [
    "The crowd is on its feet.", "[TEAM] will have to be careful now.", "What a chance that was!",
    "The game is restarted with a throw-in.", "It's still goalless.", "He should have done better there.",
    "[REFEREE] had an easy decision to make.", "The ball is out of play and the linesman points at the corner flag.",
    "Corner to [TEAM].", "That was a real turning point in this match.", "The fans are not happy with that.",
    "[COACH] looks frustrated on the touchline.", "It's a big moment in the game.",
    "The medical staff rush onto the pitch.", "[TEAM] are pressing hard for an equaliser.",
]


def caption(rng: random.Random) -> str:
    remarks = rng.sample(REMARKS, rng.choice([0, 1, 1, 2]))
    return " ".join([f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)}{rng.choice(DETAILS)}.", *remarks])


def make_split(root: Path, n_games: int, seed: int) -> list[str]:
    """Labels under root/labels and predictions under root/preds for `n_games` synthetic test games."""
    rng = random.Random(seed)
    games = [f"synthetic_league/2024-2025/game {i:03d}" for i in range(n_games)]
    for game in games:
        annotations, predictions = [], []
        for half in (1, 2):
            gt_times = sorted(rng.randrange(HALF_S) for _ in range(GT_PER_HALF))
            for t in gt_times:
                annotations.append({"gameTime": format_game_time(half, t), "label": rng.choice(CAPTION_LABELS),
                                    "position": str(t * 1000), "anonymized": caption(rng)})
            # Most predictions land near a ground truth, the rest anywhere (precision ~0.75, as STaR's).
            for _ in range(PRED_PER_HALF):
                t = rng.choice(gt_times) + rng.randint(-20, 20) if rng.random() < 0.65 else rng.randrange(HALF_S)
                predictions.append({"half": half, "seconds": max(0, t), "label": "comments", "comment": caption(rng),
                                    "confidence": rng.random()})
        labels_dir = root / "labels" / game
        labels_dir.mkdir(parents=True)
        (labels_dir / "Labels-caption.json").write_text(json.dumps({"UrlLocal": game, "annotations": annotations}))
        write_predictions(root / "preds" / game / "results_dense_captioning.json", game, predictions)
    return games


def run_official(root: Path, games: list[str], window: int) -> dict:
    official.getListGames = lambda split, task: games  # the fixture games instead of the real test split
    with contextlib.redirect_stdout(io.StringIO()):
        scores = official.evaluate(str(root / "labels"), str(root / "preds"),
                                   prediction_file="results_dense_captioning.json", version=2,
                                   window_size=window, include_SODA=False)
    return {**{k: float(v) for k, v in scores.items()}, "F1": f1(scores["Precision"], scores["Recall"])}


def cpu_seconds(*live_pids: int) -> float:
    """CPU time of this process, its reaped children (the official evaluator's JVMs, the PTB tokenizers) and the
    live processes `live_pids` (our METEOR JVM): less sensitive than wall time to other work on the machine."""
    gc.collect()  # lets the official evaluator's METEOR process be killed and reaped
    total = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                for f in ("ru_utime", "ru_stime"))
    for pid in live_pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def timed(fn):
    """fn's result, wall seconds and CPU seconds (with the reaped child processes)."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def run_star(evaluator: Evaluator, root: Path, games: list[str], window: int, seed: int) -> dict:
    return evaluator.evaluate(root / "labels", root / "preds", games, window=window, seed=seed, progress=False)


def start_and_run(root: Path, games: list[str], window: int, seed: int) -> tuple[Evaluator, dict]:
    evaluator = Evaluator()  # its METEOR JVM starts inside the timed call, as the official one's does
    return evaluator, run_star(evaluator, root, games, window, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=98)
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        games = make_split(root, args.games, args.seed)
        print(f"{len(games)} games, {len(games) * 2 * GT_PER_HALF} ground truths, "
              f"{len(games) * 2 * PRED_PER_HALF} predictions, window {args.window}", flush=True)

        official, official_s, official_cpu = timed(lambda: run_official(root, games, args.window))
        (evaluator, ours), ours_s, ours_cpu = timed(lambda: start_and_run(root, games, args.window, args.seed))
        ours_cpu += cpu_seconds(evaluator.meteor.pid) - cpu_seconds()  # its JVM is still up, for the next call
        # what a later evaluation in the same process costs (the JVM is up): the other window
        _, warm_s, _ = timed(lambda: run_star(evaluator, root, games, 5 if args.window != 5 else 30, args.seed))
        evaluator.close()

    diffs = {k: abs(ours["metrics"][k] - official[k]) for k in METRICS}
    worst = max(diffs, key=diffs.get)
    print(f"official: {official_s:.1f} s wall, {official_cpu:.1f} s CPU (with its JVMs)")
    print(f"star:     {ours_s:.1f} s wall, {ours_cpu:.1f} s CPU (with its JVMs)")
    print(f"ratio:    {ours_s / official_s:.2f} wall, {ours_cpu / official_cpu:.2f} CPU (star / official)")
    print(f"star, a second evaluation in the same process (other window, METEOR JVM already up): {warm_s:.1f} s wall")
    print(f"largest metric difference: {diffs[worst]:.2e} ({worst})")
    for k in METRICS:
        print(f"  {k:10s} official {official[k]:.6f}  star {ours['metrics'][k]:.6f}")


if __name__ == "__main__":
    main()
