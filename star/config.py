"""The pipeline configuration: YAML files merged in order, validated against `config.schema.yaml`,
defaults filled from the schema (the one place that states them), except the training and inference settings a
model preset carries (`PRESET_CONFIG`: what `model.preset: paper` sets where the config files do not).

Snakemake validates the same schema in `workflow/rules/common.smk`; the stages get their section as JSON
through a rule param, so editing one section reruns only the stages that read it.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from star import registry
from star.errors import InputError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class ConfigError(InputError):
    """A configuration value or key the schema does not accept."""


@lru_cache(maxsize=1)
def schema() -> dict:
    """The schema file with its choices filled from star/registry.py: methods, encoders (and the imported ones'
    `features.import` defaults), datasets and their halves. A registration is all a new choice needs."""
    tree = yaml.safe_load(SCHEMA_PATH.read_text())
    props = tree["properties"]
    dataset, features = props["dataset"]["properties"], props["features"]["properties"]
    dataset["source"]["enum"] = list(registry.DATASETS)
    dataset["halves"]["items"]["enum"] = registry.halves()
    features["encoders"]["items"]["enum"] = list(registry.ENCODERS)
    features["import"]["properties"] = {
        name: {"$ref": "#/$defs/npy_features", "default": {"file": e.file, "fps": e.fps, "dim": e.dim}}
        for name, e in registry.ENCODERS.items() if e.kind == "imported"}
    props["methods"]["items"]["enum"] = list(registry.METHODS)
    return tree


# The paper's training and inference settings (docs/paper-preset.md gives each one's source; the models' own sizes
# are the `paper` presets of their config dataclasses). Values the user's files set win over these.
PAPER_TRAIN = {"lr": 5e-5, "batch_size": 16, "epochs": 15, "schedule": "epoch_cosine", "warmup_steps": 0,
               "grad_clip": 1.0, "weight_decay": 0.01, "eval_every": None, "patience": 15}
PRESET_CONFIG = {
    "tiny": {},  # the schema's defaults are the embedded world's
    "paper": {
        # halves_per_batch (STaR's global features only; docs/scale.md): a spotting half offers ~10^3 samples an
        # epoch, a captioning half ~30, so captioning batches span more halves (4 of 16 drop at most 3 a half)
        "spotting": {"selection": None, "nms_window_s": 30, "threshold": 0.7,
                     "train": {**PAPER_TRAIN, "halves_per_batch": 2}},
        "captioning": {"max_tokens": 100, "train": {**PAPER_TRAIN, "halves_per_batch": 4},
                       # end-to-end methods: the same protocol (15 epochs of the paper's optimiser), whole clips
                       "dense": {"train": {"batch_size": 16, "lr": 5e-5, "warmup_steps": 0, "eval_every": None,
                                           "max_valid_samples": 2000}}},
    },
}


def with_preset(config: dict) -> dict:
    """`config` over the settings of its model preset (the schema's default preset when it names none)."""
    model = config.get("model")
    preset = model.get("preset") if isinstance(model, dict) else None
    preset = preset or schema()["properties"]["model"]["properties"]["preset"]["default"]
    return deep_merge(PRESET_CONFIG.get(preset, {}), config) if isinstance(preset, str) else config


def _validator_filling_defaults():
    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, subschema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": properties})


def _subschema(dotted: str) -> dict:
    node = schema()
    for key in dotted.split(".") if dotted else []:
        node = node["properties"][key]
    # keep $defs reachable for $ref inside the section
    return {**node, "$defs": schema().get("$defs", {})}


def cross_key_problems(cfg: dict) -> list[str]:
    """Rules between keys the schema cannot state, checked with the whole config before any job runs (a rule
    failing at run time would first make Snakemake delete the outputs the job was to replace)."""
    problems = []
    decode, positions, features = cfg["decode"], cfg["positions"], cfg["features"]
    if positions["backend"] == "classical" and positions["fps"] > decode["fps"] + 1e-9:
        problems.append(f"positions.fps ({positions['fps']:g}) exceeds decode.fps ({decode['fps']:g}): the classical "
                        "backend samples positions from the decoded frames")
    dataset = registry.dataset(cfg["dataset"]["source"])
    if dataset.synthetic:
        if decode["fps"] > cfg["world"]["video_fps"] + 1e-9:
            problems.append(f"decode.fps ({decode['fps']:g}) exceeds world.video_fps ({cfg['world']['video_fps']:g}): "
                            "decoding would repeat rendered frames (raise world.video_fps)")
        imported = [e for e in features["encoders"] if registry.encoder(e).kind == "imported"]
        if imported:
            problems.append(f"features.encoders: {', '.join(imported)} are imported from SoccerNet's .npy files, "
                            f"which the {dataset.display} has not (use a video encoder: "
                            f"{', '.join(registry.video_encoders())}; or dataset.source: soccernet)")
    odd = [h for h in cfg["dataset"]["halves"] if h not in dataset.halves]
    if odd:
        problems.append(f"dataset.halves: {odd} not halves of {dataset.display} ({list(dataset.halves)})")
    if "clip" in features["encoders"] and not features["clip"]["weights"]:
        problems.append("features.encoders has clip but features.clip.weights is not set (a local CLIP directory)")
    tables = cfg["tables"]["encoder"]
    if tables is not None and tables not in features["encoders"]:
        problems.append(f"tables.encoder ({tables}) is not one of features.encoders {features['encoders']}")
    if positions["backend"] == "sngamestate":
        unset = [k for k in ("python", "repo") if not positions["sngamestate"][k]]
        if unset:
            problems.append(f"positions.backend is sngamestate but positions.sngamestate.{' and .'.join(unset)} "
                            "is not set")
    return problems


def validate(config: dict, where: str = "config", section: str = "") -> dict:
    """Return a validated deep copy of `config` with defaults filled; raise ConfigError naming the key. A whole
    config (no `section`) also gets its model preset's settings and is checked against the cross-key rules."""
    config = copy.deepcopy(config if config is not None else {})
    if not section and isinstance(config, dict):
        config = with_preset(config)
    validator = _validator_filling_defaults()(_subschema(section))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors:
            key = ".".join(str(p) for p in [*([section] if section else []), *err.absolute_path]) or "<top>"
            lines.append(f"  {key}: {err.message}")
        raise ConfigError(f"invalid configuration in {where}:\n" + "\n".join(lines))
    problems = [] if section else cross_key_problems(config)
    if problems:
        raise ConfigError(f"invalid configuration in {where}:\n" + "\n".join(f"  {p}" for p in problems))
    return config


def deep_merge(base: dict, override: dict) -> dict:
    """Merge `override` into a copy of `base`; nested dicts merge, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(*paths: str | Path) -> dict:
    """Load YAML config files (later files override earlier ones), validated and with defaults."""
    merged: dict = {}
    for path in paths:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
        merged = deep_merge(merged, data)
    return validate(merged, where=" + ".join(str(p) for p in paths) or "config")


def read_value(value: str) -> tuple[dict, str | None]:
    """(mapping, file it came from) of an inline JSON object (what rules pass) or a YAML/JSON file path;
    ConfigError naming the text or the file when it does not parse or is not a mapping."""
    if value.lstrip().startswith("{"):
        try:
            data, path = json.loads(value), None
        except ValueError as exc:
            raise ConfigError(f"inline JSON config is malformed ({exc}): {value[:80]!r}") from None
    else:
        path = value
        try:
            data = yaml.safe_load(Path(value).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"config file {value}: cannot be read ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {value} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'inline config'} must hold a mapping, not {type(data).__name__}")
    return data, path


def section(name: str, value: str | dict | None = None) -> dict:
    """One section of the config (e.g. 'decode' or 'features.pptimesformer'), validated with defaults.

    `value` is a dict, an inline JSON object (what rules pass), a YAML/JSON file path, or None (all defaults).
    """
    where = f"section {name}"
    if isinstance(value, str):
        value, path = read_value(value)
        where = path or where
    return validate(value or {}, where=where, section=name)


def normalized(value: Any) -> Any:
    """Whole floats as ints (`fps: 1.0` is `fps: 1`), recursively: equal settings give the same JSON."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalized(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Canonical JSON (sorted keys, whole floats as ints): the form rules pass to stages and caches record, so
    `decode.fps: 1.0` for `1` reruns nothing."""
    return json.dumps(normalized(value), sort_keys=True, separators=(",", ":"))
