"""What the train stages share: their command-line data arguments, the configuration of a method and of an
ablation variant (star.variants), feature standardisation, caption tokenizers, the spotter's classes and what a
resumable checkpoint must match. The trained-model file they write is star.model_file's.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from star import config as star_config
from star import registry
from star.data.cache import check_features, open_cache
from star.data.games import read_manifest
from star.data.halves import Half, load_halves
from star.errors import InputError
from star.models import model_config
from star.variants import parse_variant

STAT_CHUNK = 4096  # feature rows read at a time for the statistics


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", required=True, choices=list(registry.METHODS), help="the method to train")
    parser.add_argument("--variant", default="default",
                        help="ablation of STaR: default, or '-'-joined noglobal, nopos, blurK (e.g. blur10-nopos)")
    parser.add_argument("--manifest", type=Path, required=True, help="games manifest (results/dataset/games.tsv)")
    parser.add_argument("--labels-root", type=Path, required=True, help="SoccerNet tree holding the labels")
    parser.add_argument("--features", type=Path, required=True,
                        help="features directory of one encoder: <dir>/<game id>/<half>.h5")
    parser.add_argument("--positions", type=Path,
                        help="positions directory: <dir>/<game id>/<half>.h5 (STaR's captioner reads it)")
    parser.add_argument("--config", help="configuration: inline JSON or a YAML file (defaults fill the rest)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, required=True, help="trained-model file to write (model.safetensors)")
    parser.add_argument("--report", type=Path, help="JSON training report to write")
    parser.add_argument("--log", type=Path, help="CSV of every step, written while training "
                        "(default: train_log.csv beside --out)")


def read_config(text: str | None) -> dict:
    """The whole configuration, validated, defaults filled (the rule passes the sections a stage reads)."""
    return star_config.section("", text)


def method_config(cfg: dict, method: str, variant: str = "default"):
    """The method's model config: the preset, GPT-2's directory, the global stride, then the variant."""
    model = cfg["model"]
    base = model_config(method, model["preset"])
    overrides = parse_variant(variant)
    if overrides and not registry.method(method).variants:
        raise InputError(f"variant {variant!r} is an ablation of STaR; {method} has only the default")
    if hasattr(base, "sss_inputs") and "sss_inputs" not in overrides:
        overrides["sss_inputs"] = model["star"]["sss_inputs"]
    if hasattr(base, "global_stride"):
        overrides["global_stride"] = model["global_stride"]
    if hasattr(base, "decoder") and model["gpt2_dir"]:
        overrides["decoder"] = {"pretrained": model["gpt2_dir"]}
    if registry.method(method).tokenizer == "t5" and model["t5_dir"]:
        overrides["pretrained"] = model["t5_dir"]
    return model_config(method, model["preset"], overrides)


def split_halves(args: argparse.Namespace, cfg: dict, split: str) -> list[Half]:
    games = [g for g in read_manifest(args.manifest) if g.split == split]
    if not games:
        raise InputError(f"{args.manifest}: no {split} game")
    return load_halves(games, cfg["dataset"]["halves"], args.features, args.positions, args.labels_root,
                       cfg["dataset"]["labels"])


def train_valid_halves(args: argparse.Namespace, cfg: dict) -> tuple[list[Half], list[Half]]:
    """The train and valid splits' halves, which must share one feature rate and dimension."""
    train, valid = split_halves(args, cfg, "train"), split_halves(args, cfg, "valid")
    check_features(valid[0].features, valid[0].fps, valid[0].dim, (train[0].fps, train[0].dim),
                   "the train features are")
    return train, valid


def feature_statistics(halves: list[Half]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of every feature of `halves`, streamed (float64 sums)."""
    total = squares = None
    count = 0
    for half in tqdm(halves, desc="feature statistics", unit="half", mininterval=2.0):
        with open_cache(half.features, "features") as h5:
            for start in range(0, half.length, STAT_CHUNK):
                rows = h5["features"][start:start + STAT_CHUNK].astype(np.float64)
                total = rows.sum(0) if total is None else total + rows.sum(0)
                squares = (rows ** 2).sum(0) if squares is None else squares + (rows ** 2).sum(0)
                count += len(rows)
    if not count:
        raise InputError("no training features to standardise with")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def caption_tokenizer(method: str, model_cfg, captions: list[str], cfg: dict):
    """The method's tokenizer kind (star/registry.py): `words` (SDVC) a word vocabulary of the train captions;
    `bpe` (Delta, STaR) GPT-2's BPE when GPT-2 is loaded or the preset is `paper`, else a byte-level BPE learned
    on the train captions; `t5` (Vid2Seq) T5's own when T5 is loaded (model.t5_dir), else that learned BPE."""
    if registry.method(method).tokenizer == "words":
        return importlib.import_module("star.models.vocab").WordVocab.build(captions, model_cfg.min_word_freq)
    # by name: the spotting stages share this module and must not hash (or import) the decoder behind it
    make_tokenizer = importlib.import_module("star.models.tokenizer").make_tokenizer
    if registry.method(method).tokenizer == "t5":  # T5's own with T5's weights, else a BPE learned on the captions
        t5 = model_cfg.pretrained
        return make_tokenizer("t5" if t5 else "bpe", captions, model_dir=t5)
    gpt2 = model_cfg.decoder.pretrained is not None or cfg["model"]["preset"] == "paper"
    return make_tokenizer("gpt2" if gpt2 else "bpe", captions, model_dir=model_cfg.decoder.pretrained)


def n_classes(cfg: dict) -> int:
    """A spotter's outputs: background, then the dataset's event labels."""
    return 1 + len(registry.classes(cfg["dataset"]["source"]))


def fingerprint(*parts) -> str:
    """sha256 over JSON-able parts: what a checkpoint must match to be resumed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def source_stamps(halves: list[Half]) -> list:
    """(path, size, mtime) of every cache and labels file: a rewritten input invalidates a checkpoint."""
    paths = [p for h in halves for p in (h.features, h.positions) if p is not None]
    return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
