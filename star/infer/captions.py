"""`star captioning-infer`: captions of each game given at its spots (or at its ground-truth annotations), written
as the official `results_dense_captioning.json` of each.

    star captioning-infer --model results/captioning/star/pptimesformer/default/model.safetensors \\
        --game-path "<league>/<season>/<game>" ... --features F1.h5 F2.h5 ... [--positions P1.h5 P2.h5 ...] \\
        --spots S1.json S2.json ... --out .../<game path>/results_dense_captioning.json ... [--config CFG]

    ... --labels <root>/<game path>/Labels-caption.json ...   instead of --spots: ground-truth anchors (Table 4)

One --game-path, --out (and --labels) per game; features, positions and spots per half, game by game, every game
with the same number of halves. The model is loaded once for all games, and once for calls joined by `--and` (the
workflow runs one job per model over the test split, at both anchors where its tables need both: `--spots ... --out
... --and ... --labels ... --out ...`); each game's file is written as soon as it is captioned.

A model of an end-to-end ("dense") method (PDVC, Vid2Seq) reads neither: it finds the events itself
(star.infer.dense), and ground-truth anchors are not offered for it.

Features, positions and spots are given per half, in the same order. Each anchor's window is captioned with the
captioner's `generate` (beam search, `captioning.beam_size`); a prediction takes the spot's label and confidence
(ground-truth anchors: the annotation's label, confidence 1). Spotting keeps at least one spot per half, so every
half with features gets a prediction.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch
from tqdm import tqdm

from star import config as star_config
from star import registry
from star.data.cache import cache_attrs
from star.data.datasets import CaptioningDataset, Collate
from star.data.halves import CacheReader, Half, feature_attrs
from star.data.games import Game
from star.data.jsonio import read_json_object
from star.data.soccernet import load_labels
from star.device import pick_device
from star.errors import InputError
from star.data.predictions import write_predictions
from star.infer.dense import dense_predictions
from star.model_file import inputs_of, load_model


def read_spots(path: Path) -> list[dict]:
    data = read_json_object(path, InputError, "spots file")
    if not isinstance(data.get("spots"), list):
        raise InputError(f"{path}: not a spots file of `star spotting-infer` (no 'spots' list)")
    return data["spots"]


def check_counts(args: argparse.Namespace) -> int:
    """Halves per game, after checking that every per-game and per-half list fits --game-path and --features."""
    games, halves = len(args.game_path), len(args.features)
    if halves % games:
        raise InputError(f"--features names {halves} halves for {games} games (every game the same number)")
    per_half = {"--positions": args.positions, "--spots": args.spots}
    per_game = {"--out": args.out, "--labels": args.labels}
    for flag, given in per_half.items():
        if given and len(given) != halves:
            raise InputError(f"--features names {halves} halves but {flag} {len(given)}")
    for flag, given in per_game.items():
        if given and len(given) != games:
            raise InputError(f"--game-path names {games} games but {flag} {len(given)}")
    return halves // games


def game_halves(game_path: str, features: list[Path], positions: list[Path | None]) -> list[Half]:
    halves = []
    for path, pos in zip(features, positions, strict=True):
        length, fps, dim = feature_attrs(path)
        halves.append(Half(Game("", game_path, ""), int(cache_attrs(path)["half"]), path, pos, (), length, fps, dim))
    return halves


def anchors(halves: list[Half], labels: Path | None = None, spots: list[Path] | None = None) -> list[dict]:
    """Every anchor of a game to caption, from its labels file or its halves' spots files: {"index" (of its half),
    "half", "seconds", "label", "confidence"}."""
    out = []
    if labels:
        annotations = load_labels(labels)
        for i, half in enumerate(halves):
            out += [{"index": i, "half": half.half, "seconds": a.seconds, "label": a.label, "confidence": 1.0}
                    for a in annotations.half(half.half)]
        return out
    for i, (half, path) in enumerate(zip(halves, spots, strict=True)):
        out += [{"index": i, "half": half.half, "seconds": int(s["seconds"]), "label": s["label"],
                 "confidence": float(s["confidence"])} for s in read_spots(path)]
    return out


@torch.no_grad()
def caption(model, dataset: CaptioningDataset, batch_size: int, beam_size: int, max_tokens: int,
            device: torch.device) -> list[str]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=Collate())
    texts = []
    for batch in tqdm(loader, desc="captioning", unit="batch", mininterval=2.0):
        texts += model.generate(batch.to(device), beam_size=beam_size, max_tokens=max_tokens)
    return texts


def caption_anchors(model, content: dict, halves: list[Half], wanted: list[dict], section: dict,
                    device: torch.device) -> list[dict]:
    """The official-format prediction (half, seconds, label, confidence, comment) of every anchor of `wanted`."""
    inputs = inputs_of(content, "captioning", halves[0].features)
    reader = CacheReader(global_stride=getattr(content["model_cfg"], "global_stride", 1))
    dataset = CaptioningDataset(halves, inputs, anchors=[(a["index"], a["seconds"]) for a in wanted], reader=reader)
    texts = caption(model, dataset, section["infer_batch_size"], section["beam_size"], section["max_tokens"], device)
    return [{"half": a["half"], "seconds": a["seconds"], "label": a["label"], "confidence": a["confidence"],
             "comment": text} for a, text in zip(wanted, texts, strict=True)]


def loaded_model(path: Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """A captioner loaded once per process for every `--and` call that names it (used without gradients); a file
    written again in between is read again."""
    stat = path.stat()
    return _load_once(path.resolve(), stat.st_mtime_ns, stat.st_size, device)


@functools.cache
def _load_once(path: Path, mtime_ns: int, size: int, device: torch.device) -> tuple[torch.nn.Module, dict]:
    return load_model(path, "captioning", device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="captioner written by `star captioning-train`")
    parser.add_argument("--game-path", nargs="+", required=True,
                        help="each game's path in the SoccerNet tree (UrlLocal)")
    parser.add_argument("--features", type=Path, nargs="+", required=True,
                        help="features cache of each half, game by game")
    parser.add_argument("--positions", type=Path, nargs="*", help="positions cache of each half, same order")
    anchors_from = parser.add_mutually_exclusive_group()  # one of them for a two-stage method, none for a dense one
    anchors_from.add_argument("--spots", type=Path, nargs="+", help="spots JSON of each half, same order")
    anchors_from.add_argument("--labels", type=Path, nargs="+",
                              help="each game's Labels-caption.json: caption the ground-truth anchors")
    parser.add_argument("--out", type=Path, nargs="+", required=True,
                        help="results_dense_captioning.json to write, one per game")
    parser.add_argument("--config", help="configuration: inline JSON or a YAML file (captioning and model sections)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    cfg = star_config.section("", args.config)
    per_game = check_counts(args)
    torch.set_num_threads(args.threads)
    section = cfg["captioning"]
    device = pick_device(cfg["model"]["device"])
    model, content = loaded_model(args.model, device)
    if getattr(model, "parsing", None):  # counts of this call's games, not of an earlier `--and` call's
        model.parsing = dict.fromkeys(model.parsing, 0)
    positions = args.positions or [None] * len(args.features)
    of_game = [slice(i * per_game, (i + 1) * per_game) for i in range(len(args.game_path))]  # its halves' entries
    games = [game_halves(path, args.features[part], positions[part])  # every game's caches checked before any caption
             for path, part in zip(args.game_path, of_game, strict=True)]
    dense = registry.method(content["method"]).kind == "dense"
    if dense and (args.spots or args.labels):
        raise InputError(f"{args.model}: {content['method']} finds its own events; it takes no --spots or "
                         "--labels (ground-truth anchors are for two-stage methods)")
    if not dense and not (args.spots or args.labels):
        raise InputError(f"{args.model}: a {content['method']} captioner needs --spots or --labels")
    for i, (game_path, halves, out) in enumerate(zip(args.game_path, games, args.out, strict=True)):
        if dense:
            predictions = dense_predictions(model, content, [(h.half, h.features) for h in halves],
                                            section["max_tokens"], device, cfg["dataset"]["source"])
        else:
            wanted = anchors(halves, args.labels[i] if args.labels else None,
                             args.spots[of_game[i]] if args.spots else None)
            predictions = caption_anchors(model, content, halves, wanted, section, device)
        write_predictions(out, game_path, predictions)
        print(f"star captioning-infer: {len(predictions)} captions -> {out}")
        if predictions:
            print(json.dumps(predictions[0]))
    if getattr(model, "parsing", None):  # Vid2Seq parses what it generates: events, dropped, fallbacks
        print("star captioning-infer: over every game, " + ", ".join(f"{k} {v}" for k, v in model.parsing.items()))
    return 0
