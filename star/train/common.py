"""What the four model stages share: their command-line data arguments, the configuration of a method and of an
ablation variant, feature standardisation, caption tokenizers, and the trained-model file.

Variants name Table 3's and Table 6's ablations of STaR: `default`, or `-`-joined switches `noglobal` (no global
features), `nopos` (no positions: STaR without its SSS) and `blurK` (feature blurring K), e.g. `blur10-nopos`.
Blurring is an ablation of captioning only: a captioning variant's spots come from `spotting_variant(v)`.

The trained-model file (`model.safetensors`, written by the train stages) holds tensors only: the weights, the
standardisation statistics and the tokenizer's files (as bytes), with the method, its config, the feature dimension
and rate and the provenance as JSON metadata. Nothing in it is unpickled, so a model file cannot run code.
`save_pretrained` turns one into a Hugging Face-style folder (config.json, model.safetensors, tokenizer files);
`load_model` rebuilds the module from either (plus GPT-2's directory for `paper` models).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from star import config as star_config
from star import registry
from star.data.cache import open_cache
from star.data.games import read_manifest
from star.errors import InputError
from star.models import build_captioner, build_dense, build_spotter, model_config
from star.provenance import atomic_path
from star.train.datasets import Half, Inputs, feature_attrs, load_halves

VARIANT_SWITCHES = {"noglobal": ("use_global", False), "nopos": ("use_positions", False)}
STAT_CHUNK = 4096  # feature rows read at a time for the statistics
MODEL_FORMAT = "star-model/1"
WEIGHTS, MODEL_CONFIG = "model.safetensors", "config.json"
TOKENIZERS = {"WordVocab": "star.models.vocab", "Tokenizer": "star.models.tokenizer"}  # class -> module, allowed


class ModelFileError(InputError):
    """A trained-model file that is missing or not written by a star train stage."""


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


def parse_variant(variant: str) -> dict:
    """'blur10-nopos' -> {'blur': 10, 'use_positions': False}; 'default' -> {}."""
    overrides = {}
    for switch in ([] if variant == "default" else variant.split("-")):
        if switch in VARIANT_SWITCHES:
            key, value = VARIANT_SWITCHES[switch]
            overrides[key] = value
        elif (match := re.fullmatch(r"blur([1-9]\d*)", switch)):
            overrides["blur"] = int(match.group(1))
        else:
            raise InputError(f"variant {variant!r}: unknown switch {switch!r} (noglobal, nopos, blurK)")
    return overrides


def spotting_variant(variant: str) -> str:
    """The spotter a captioning variant uses: the same switches without blurring."""
    kept = [s for s in variant.split("-") if not s.startswith("blur")]
    return "-".join(kept) or "default"


def method_config(cfg: dict, method: str, variant: str = "default"):
    """The method's model config: the preset, GPT-2's directory, the global stride, then the variant."""
    model = cfg["model"]
    base = model_config(method, model["preset"])
    overrides = parse_variant(variant)
    if overrides and not registry.method(method).variants:
        raise InputError(f"variant {variant!r} is an ablation of STaR; {method} has only the default")
    if hasattr(base, "global_stride"):
        overrides["global_stride"] = model["global_stride"]
    if hasattr(base, "decoder") and model["gpt2_dir"]:
        overrides["decoder"] = {"pretrained": model["gpt2_dir"]}
    return model_config(method, model["preset"], overrides)


def model_inputs(model_cfg, fps: float, stage: str) -> Inputs:
    """What the datasets read for this model: window length at `fps`, global features, positions, blurring
    (only STaR's configuration has the switches; a spotter is trained without blurring)."""
    window_s = getattr(model_cfg, f"{stage}_window_s")
    return Inputs(window=max(1, round(window_s * fps)),
                  with_global=getattr(model_cfg, "use_global", False),
                  with_positions=getattr(model_cfg, "use_positions", False),
                  players=getattr(model_cfg, "max_players", 32),
                  blur=getattr(model_cfg, "blur", 1) if stage == "captioning" else 1,
                  # STaR's captioner reads Filter/Memory's frames only: selected once per half by the dataset
                  select=((model_cfg.filter_alpha, model_cfg.memory_tau)
                          if stage == "captioning" and getattr(model_cfg, "use_global", False)
                          and hasattr(model_cfg, "filter_alpha") else None))


def inputs_of(content: dict, stage: str, features: Path) -> Inputs:
    """What a trained model reads (its windows and standardisation), checking `features` suit it."""
    _, fps, dim = feature_attrs(features)
    if (fps, dim) != (content["fps"], content["feature_dim"]):
        raise InputError(f"{features}: {dim}-d features at {fps:g} fps, but the {content['method']} model was "
                         f"trained on {content['feature_dim']}-d features at {content['fps']:g} fps")
    inputs = model_inputs(content["model_cfg"], fps, stage)
    if content["norm"] is not None:
        inputs.mean, inputs.std = (t.numpy() for t in content["norm"])
    return inputs


def split_halves(args: argparse.Namespace, cfg: dict, split: str) -> list[Half]:
    games = [g for g in read_manifest(args.manifest) if g.split == split]
    if not games:
        raise InputError(f"{args.manifest}: no {split} game")
    return load_halves(games, cfg["dataset"]["halves"], args.features, args.positions, args.labels_root,
                       cfg["dataset"]["labels"])


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
    on the train captions."""
    if registry.method(method).tokenizer == "words":
        return importlib.import_module("star.models.vocab").WordVocab.build(captions, model_cfg.min_word_freq)
    # by name: the spotting stages share this module and must not hash (or import) the decoder behind it
    make_tokenizer = importlib.import_module("star.models.tokenizer").make_tokenizer
    gpt2 = model_cfg.decoder.pretrained is not None or cfg["model"]["preset"] == "paper"
    return make_tokenizer("gpt2" if gpt2 else "bpe", captions, model_dir=model_cfg.decoder.pretrained)


def tokenizer_files(tokenizer) -> dict[str, bytes]:
    """The bytes of the files the tokenizer's `save(directory)` writes."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save(tmp)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())}


def read_tokenizer(kind: str, files: dict[str, bytes], where: Path):
    """Rebuild a tokenizer of an allowed class from its files (a model file names the class, never the code)."""
    if kind not in TOKENIZERS:
        raise ModelFileError(f"{where}: unknown tokenizer class {kind!r} (expected one of {', '.join(TOKENIZERS)})")
    bad = [name for name in files if Path(name).name != name or name.startswith(".")]
    if bad:
        raise ModelFileError(f"{where}: tokenizer file names {bad} are not plain file names")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return getattr(importlib.import_module(TOKENIZERS[kind]), kind).load(tmp)


def n_classes(cfg: dict) -> int:
    """A spotter's outputs: background, then the dataset's event labels."""
    return 1 + len(registry.classes(cfg["dataset"]["source"]))


def build_model(stage: str, method: str, model_cfg, feature_dim: int, tokenizer=None,
                classes: int | None = None) -> torch.nn.Module:
    if stage == "spotting":
        return build_spotter(method, model_cfg, feature_dim, classes)
    if registry.method(method).kind == "dense":  # the whole model stands in the captioner's place
        return build_dense(method, model_cfg, feature_dim, tokenizer)
    return build_captioner(method, model_cfg, feature_dim, tokenizer)


def untied(state: dict) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """({'model.<name>': tensor} with each tied weight once, {dropped name: the name kept}): safetensors stores
    no shared memory (GPT-2 ties its output layer to its token embedding)."""
    tensors, aliases, seen = {}, {}, {}
    for name, value in state.items():
        key = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape), value.stride())
        if value.numel() and key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            tensors[f"model.{name}"] = value.detach().cpu().contiguous()
    return tensors, aliases


def save_model(path: Path, model: torch.nn.Module, *, stage: str, method: str, variant: str, preset: str,
               model_cfg, feature_dim: int, fps: float, encoder: str, norm, tokenizer, provenance: dict,
               training: dict, classes: int | None = None) -> None:
    """One safetensors file: weights, standardisation and tokenizer files as tensors, the rest as JSON metadata."""
    tensors, aliases = untied(model.state_dict())
    meta = {"format": MODEL_FORMAT, "stage": stage, "method": method, "variant": variant, "preset": preset,
            "config": dataclasses.asdict(model_cfg), "feature_dim": feature_dim, "fps": fps, "encoder": encoder,
            "tokenizer": None if tokenizer is None else type(tokenizer).__name__, "provenance": provenance,
            "training": training, "tied": aliases, "n_classes": classes}
    if norm is not None:
        tensors.update({"norm.mean": torch.from_numpy(norm[0]), "norm.std": torch.from_numpy(norm[1])})
    if tokenizer is not None:
        tensors.update({f"tokenizer.{name}": torch.frombuffer(bytearray(data), dtype=torch.uint8)
                        for name, data in tokenizer_files(tokenizer).items()})
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={"star": json.dumps(meta, sort_keys=True)})


def save_pretrained(directory: Path, source: Path) -> dict:
    """A trained-model file as a Hugging Face-style folder: config.json, model.safetensors (weights and
    standardisation) and the tokenizer's own files. Returns the config."""
    meta, tensors = read_model_file(source)
    directory.mkdir(parents=True, exist_ok=True)
    for name in [k for k in tensors if k.startswith("tokenizer.")]:
        (directory / name.removeprefix("tokenizer.")).write_bytes(tensors.pop(name).numpy().tobytes())
    save_file(tensors, directory / WEIGHTS, metadata={"format": "pt"})
    (directory / MODEL_CONFIG).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


def read_model_file(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a trained-model file or folder; nothing in it is unpickled or run."""
    folder = path.is_dir()
    weights = path / WEIGHTS if folder else path
    if not weights.is_file():
        raise ModelFileError(f"{weights}: trained-model file does not exist")
    try:
        with safe_open(weights, "pt") as fh:  # one open: the tensors and, in a single file, the metadata
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
            stored = fh.metadata() or {}
        meta = json.loads((path / MODEL_CONFIG).read_text()) if folder else json.loads(stored["star"])
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no {MODEL_CONFIG} beside {WEIGHTS}") from None
    except (SafetensorError, KeyError, ValueError, OSError) as exc:  # a pickle, a truncated or a foreign file
        raise ModelFileError(f"{weights}: not a star model in safetensors format ({type(exc).__name__}: {exc}); "
                             "pickled .pt files are refused, as they can run code") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path}: not a star trained-model file (format {meta.get('format')!r})"
                             if isinstance(meta, dict) else f"{path}: not a star trained-model file")
    if folder:
        tensors.update({f"tokenizer.{p.name}": torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8)
                        for p in sorted(path.iterdir()) if p.name not in (WEIGHTS, MODEL_CONFIG, "README.md")
                        and p.is_file() and not p.name.startswith(".")})
    return meta, tensors


def load_model(path: str | Path, stage: str, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """(module in eval mode on `device`, the model's metadata with `model_cfg`, `norm` and `tokenizer`) of a
    trained-model file (`model.safetensors`) or of a folder written by `save_pretrained`."""
    path = Path(path)
    content, tensors = read_model_file(path)
    if content.get("stage") != stage:
        raise ModelFileError(f"{path}: not a {stage} model (found {content.get('stage')!r})")
    model_cfg = model_config(content["method"], content["preset"], content["config"])
    files = {k.removeprefix("tokenizer."): v.numpy().tobytes() for k, v in tensors.items()
             if k.startswith("tokenizer.")}
    tokenizer = None if content["tokenizer"] is None else read_tokenizer(content["tokenizer"], files, path)
    model = build_model(stage, content["method"], model_cfg, content["feature_dim"], tokenizer,
                        content.get("n_classes"))
    state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    state.update({name: state[kept] for name, kept in content.get("tied", {}).items() if kept in state})
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit the {content['method']} {stage} model ({exc})") from None
    norm = (tensors["norm.mean"], tensors["norm.std"]) if "norm.mean" in tensors else None
    content.update(model_cfg=model_cfg, tokenizer=tokenizer, norm=norm)
    return model.to(device).eval(), content


def fingerprint(*parts) -> str:
    """sha256 over JSON-able parts: what a checkpoint must match to be resumed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def source_stamps(halves: list[Half]) -> list:
    """(path, size, mtime) of every cache and labels file: a rewritten input invalidates a checkpoint."""
    paths = [p for h in halves for p in (h.features, h.positions) if p is not None]
    return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
