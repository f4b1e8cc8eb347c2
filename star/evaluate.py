"""`star evaluate`: SoccerNet dense-captioning metrics of a predictions tree, with the official evaluator's
semantics (star.eval.dvc describes them), reproducible and robust; or, with `--protocol captioning`, the
captioning subtask's metrics (star.eval.captioning: one caption per ground-truth annotation, nlg-eval's scoring).

    star evaluate LABELS_ROOT PREDICTIONS_ROOT --games GAMES_FILE --window 30 [--seed N] [--json OUT]
        [--method STaR --encoder Baidu --fps 1] [--meta KEY=VALUE ...] [--per-label]
        [--bootstrap 1000 [--bootstrap-unit game]]
    star evaluate LABELS_ROOT GT_PREDICTIONS_ROOT --games GAMES_FILE --protocol captioning [--json OUT] [...]

GAMES_FILE holds one game path per line, relative to both roots. From Python:

    from star.evaluate import evaluate
    scores = evaluate(labels_root, preds_root, games, window=30, seed=0)["metrics"]   # {"METEOR": ..., "F1": ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from star.data.soccernet import read_game_list
from star.errors import InputError
from star.eval.captioning import PROTOCOL, evaluate_captioning
from star.data.predictions import LABELS_FILE, PREDICTIONS_FILE
from star.eval.dvc import BOOTSTRAP_UNITS, METRICS, Evaluator, evaluate
from star.eval.java import JavaError
from star.provenance import code_hash, record, write_text_atomic

__all__ = ["Evaluator", "add_arguments", "evaluate", "run"]


def meta_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels_root", type=Path, help="SoccerNet tree holding <game>/Labels-caption.json")
    parser.add_argument("predictions_root", type=Path, help="tree holding <game>/results_dense_captioning.json")
    parser.add_argument("--games", type=Path, required=True,
                        help="file with one game path per line, relative to both roots")
    parser.add_argument("--protocol", choices=["dense", "captioning"], default="dense",
                        help="dense: SoccerNet's dense-captioning evaluator (at a --window); captioning: the "
                        "captioning subtask (predictions at the ground-truth annotations; no window)")
    parser.add_argument("--window", type=int, default=30, help="window in seconds: 30 = '@30', 5 = 'tight'")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random references of unmatched predictions")
    parser.add_argument("--json", type=Path, help="write metrics, counts, per-half scores and provenance here")
    parser.add_argument("--method", help="method name, for `star tables`")
    parser.add_argument("--encoder", help="feature encoder name, for `star tables`")
    parser.add_argument("--fps", type=float, help="feature frame rate, for `star tables`")
    parser.add_argument("--meta", type=meta_pair, action="append", default=[], metavar="KEY=VALUE",
                        help="more row metadata for `star tables` (repeatable)")
    parser.add_argument("--per-label", action="store_true",
                        help="also score each ground-truth label's pairs (pooled over halves)")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="N resamples of the games for confidence intervals (0: none)")
    parser.add_argument("--bootstrap-unit", choices=BOOTSTRAP_UNITS, default="game",
                        help="what a resample draws: whole games (both halves) or single halves")
    parser.add_argument("--ci", type=float, default=0.95, help="confidence level of the intervals")
    parser.add_argument("--labels-file", default=LABELS_FILE, help="labels file name inside a game folder")
    parser.add_argument("--predictions-file", default=PREDICTIONS_FILE,
                        help="prediction file name inside a game folder")


def row_meta(args: argparse.Namespace) -> dict:
    meta = {k: v for k, v in (("method", args.method), ("encoder", args.encoder), ("fps", args.fps)) if v is not None}
    if "fps" in meta and meta["fps"].is_integer():
        meta["fps"] = int(meta["fps"])
    return {**meta, **dict(args.meta)}


def report(result: dict) -> str:
    """Metrics x100 as the official evaluator prints them (with confidence intervals if any), and the counts."""
    c = result["counts"]
    ci = result.get("ci", {}).get("metrics", {})
    interval = lambda k: f"  [{100 * ci[k][0]:.4f}, {100 * ci[k][1]:.4f}]" if k in ci else ""
    if result.get("protocol") == PROTOCOL:
        return "\n".join([f"captioning subtask: {c['games']} games, {c['captions']} captions "
                          f"({c['empty_captions']} empty)"] +
                         [f"| {k}: {100 * v:.4f}{interval(k)}" for k, v in result["metrics"].items()])
    lines = [f"window {result['window']} s, seed {result['seed']}: {c['games']} games, {c['halves']} halves, "
             f"{c['ground_truths']} ground truths, {c['predictions']} predictions, {c['pairs']} pairs "
             f"({c['unmatched_predictions']} unmatched predictions)"]
    for k in METRICS:
        lines.append(f"| {k}: {100 * result['metrics'][k]:.4f}{interval(k)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.window < 1:
        raise InputError(f"--window must be a positive number of seconds, not {args.window}")
    if not 0 < args.ci < 1:   # checked before the scorers start Java
        raise InputError(f"--ci must be a confidence level between 0 and 1 (e.g. 0.95), not {args.ci}")
    captioning = args.protocol == PROTOCOL
    if captioning and (args.per_label or args.bootstrap_unit != "game"):
        raise InputError("--per-label and --bootstrap-unit belong to the dense protocol")
    games = read_game_list(args.games)
    if not games:
        raise InputError(f"{args.games}: the game list is empty")
    files = dict(labels_file=args.labels_file, predictions_file=args.predictions_file)
    intervals = dict(bootstrap=args.bootstrap, ci=args.ci)
    options = (dict(**files, **intervals, seed=args.seed) if captioning else
               dict(**files, **intervals, per_label=args.per_label, bootstrap_unit=args.bootstrap_unit))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", ResourceWarning)   # the scorers' unclosed pipes: not the user's concern
            if captioning:
                result = evaluate_captioning(args.labels_root, args.predictions_root, games, **options)
            else:
                result = evaluate(args.labels_root, args.predictions_root, games, args.window, args.seed, **options,
                                  progress=None)
    except JavaError as exc:
        print(f"star evaluate: error: {exc}", file=sys.stderr)
        return 1
    for warning in caught:
        print(f"star evaluate: warning: {warning.message}", file=sys.stderr)
    print(report(result))
    if args.json:
        trees = ((args.labels_root, args.labels_file), (args.predictions_root, args.predictions_file))
        sources = [args.games] + [root / game / name for game in games for root, name in trees]
        config = ({"protocol": PROTOCOL} if captioning else {"window": args.window, "seed": args.seed}) | {
            "games": str(args.games), **options}
        provenance = record("evaluate", config=config, code=code_hash("star.evaluate"), sources=sources)
        write_text_atomic(args.json, json.dumps({"meta": row_meta(args), **result, "provenance": provenance},
                                                indent=1) + "\n")
    return 0
