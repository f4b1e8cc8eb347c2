"""The trained-model file: what the train stages write and inference, `star caption` and `star export` read.

`model.safetensors` holds tensors only: the weights, the standardisation statistics and the tokenizer's files (as
bytes), with the method, its config, the feature dimension and rate, the spotter's classes and the provenance as
JSON metadata. Nothing in it is unpickled, so a model file cannot run code; the tokenizer is rebuilt from its files
by one of the classes star/registry.py allows. `save_pretrained` turns one into a Hugging Face-style folder
(config.json, model.safetensors, tokenizer files); `load_model` rebuilds the module from either (plus GPT-2's
directory for `paper` models). `inputs_of` says what a loaded model reads, checking the features suit it.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from star import registry
from star.data.cache import check_features
from star.errors import InputError
from star.models import build_captioner, build_dense, build_spotter, model_config
from star.provenance import atomic_path
from star.data.halves import Inputs, feature_attrs

MODEL_FORMAT = "star-model/1"
WEIGHTS, MODEL_CONFIG = "model.safetensors", "config.json"


class ModelFileError(InputError):
    """A trained-model file that is missing or not written by a star train stage."""


def model_inputs(model_cfg, fps: float, stage: str) -> Inputs:
    """What the datasets read for this model: window length at `fps`, global features, positions, blurring
    (only STaR's configuration has the switches; a spotter is trained without blurring)."""
    window_s = getattr(model_cfg, f"{stage}_window_s")
    return Inputs(window=max(1, round(window_s * fps)),
                  with_global=getattr(model_cfg, "use_global", False),
                  with_positions=getattr(model_cfg, "use_positions", False),
                  position_attributes=getattr(model_cfg, "sss_inputs", "xy") != "xy",
                  players=getattr(model_cfg, "max_players", 32),
                  blur=getattr(model_cfg, "blur", 1) if stage == "captioning" else 1,
                  # STaR's captioner reads Filter/Memory's frames only: selected once per half by the dataset
                  select=((model_cfg.filter_alpha, model_cfg.memory_tau)
                          if stage == "captioning" and getattr(model_cfg, "use_global", False)
                          and hasattr(model_cfg, "filter_alpha") else None))


def inputs_of(content: dict, stage: str, features: Path) -> Inputs:
    """What a trained model reads (its windows and standardisation), checking `features` suit it."""
    _, fps, dim = feature_attrs(features)
    check_features(features, fps, dim, (content["fps"], content["feature_dim"]),
                   f"the {content['method']} model was trained on")
    inputs = model_inputs(content["model_cfg"], fps, stage)
    if content["norm"] is not None:
        inputs.mean, inputs.std = (t.numpy() for t in content["norm"])
    return inputs


def tokenizer_files(tokenizer) -> dict[str, bytes]:
    """The bytes of the files the tokenizer's `save(directory)` writes."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save(tmp)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())}


def read_tokenizer(kind: str, files: dict[str, bytes], where: Path):
    """Rebuild a tokenizer of an allowed class from its files (a model file names the class, never the code)."""
    if kind not in registry.TOKENIZER_CLASSES:
        raise ModelFileError(f"{where}: unknown tokenizer class {kind!r} "
                             f"(expected one of {', '.join(registry.TOKENIZER_CLASSES)})")
    bad = [name for name in files if Path(name).name != name or name.startswith(".")]
    if bad:
        raise ModelFileError(f"{where}: tokenizer file names {bad} are not plain file names")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        return registry.load(registry.TOKENIZER_CLASSES[kind]).load(tmp)


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
    if content.get("method") not in registry.METHODS:
        raise ModelFileError(f"{path}: method {content.get('method')!r} is not registered here (known: "
                             f"{', '.join(registry.METHODS)}; a plugin's method needs STAR_PLUGINS)")
    if stage == "spotting" and not content.get("n_classes"):
        raise ModelFileError(f"{path}: a spotter without its number of classes (written by an older star); "
                             "train it again")
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
