"""The models of every registered method (star/registry.py) behind one interface (the contract with star.train
and star.infer):

    two_stage methods (spotter + captioner):
        build_spotter(method, cfg, feature_dim, n_classes) -> module; module(batch) -> logits [B, n_classes]
            (background first, then the dataset's labels)
        build_captioner(method, cfg, feature_dim, tokenizer) -> module; module(batch) -> scalar token cross-entropy,
            module.generate(batch, beam_size, max_tokens) -> list[str]
    dense methods (one model predicts events and captions):
        build_dense(method, cfg, feature_dim, tokenizer) -> module; module(batch) -> scalar loss

Each method has a config dataclass with `tiny` and `paper` presets; `model_config` builds one from a preset and
overrides. Modules are imported on first use, so that importing one building block (e.g. star.models.hashgrid)
does not pull in transformers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from star import registry

PRESETS = ("tiny", "paper")


def stage_module(method: str, stage: str) -> str:
    """The module of `method`'s model for `stage` ('spotting' or 'captioning'): what its code hash starts from."""
    return registry.method(method).target(stage).split(":")[0]


def model_config(method: str, preset: str = "tiny", overrides: dict[str, Any] | None = None):
    """The method's config: `preset` ('tiny' or 'paper'), then `overrides` (field -> value; `decoder` takes a
    dict of DecoderConfig fields). An unknown field raises a ValueError naming it."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r} (expected one of {', '.join(PRESETS)})")
    cfg = getattr(registry.load(registry.method(method).config), preset)()
    overrides = dict(overrides or {})
    decoder = overrides.pop("decoder", None)
    if decoder is not None:
        if not hasattr(cfg, "decoder"):
            raise ValueError(f"method {method!r} has no GPT-2 decoder to configure")
        cfg = dataclasses.replace(cfg, decoder=_replace(cfg.decoder, decoder, f"{method} decoder"))
    return _replace(cfg, overrides, method)


def _replace(cfg, overrides: dict[str, Any], what: str):
    known = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {what} model setting(s) {unknown} (known: {sorted(known)})")
    return dataclasses.replace(cfg, **overrides)


def _two_stage(method: str):
    entry = registry.method(method)
    if entry.kind != "two_stage":
        raise ValueError(f"method {method!r} is {entry.kind}: it has no separate spotter and captioner")
    return entry


def build_spotter(method: str, cfg, feature_dim: int, n_classes: int) -> nn.Module:
    return registry.load(_two_stage(method).spotter)(cfg, feature_dim, n_classes)


def build_captioner(method: str, cfg, feature_dim: int, tokenizer) -> nn.Module:
    return registry.load(_two_stage(method).captioner)(cfg, feature_dim, tokenizer)


def build_dense(method: str, cfg, feature_dim: int, tokenizer) -> nn.Module:
    entry = registry.method(method)
    if entry.kind != "dense":
        raise ValueError(f"method {method!r} is {entry.kind}, not dense")
    return registry.load(entry.model)(cfg, feature_dim, tokenizer)


__all__ = ["PRESETS", "build_captioner", "build_dense", "build_spotter", "model_config", "stage_module"]
