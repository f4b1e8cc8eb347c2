"""The models of the three methods behind one interface (the contract with star.train and star.infer):

    build_spotter(method, cfg, feature_dim) -> module; module(batch) -> logits [B, 1 + 13] (background first)
    build_captioner(method, cfg, feature_dim, tokenizer) -> module; module(batch) -> scalar token cross-entropy,
        module.generate(batch, beam_size, max_tokens) -> list[str]

methods: "sdvc" (star.models.sdvc), "delta" (star.models.delta, .delta_captioner), "star" (star.models.star,
.star_captioner). Each method has a
config dataclass with `tiny` and `paper` presets; `model_config` builds one from a preset and overrides.
SDVC's captioner takes its word vocabulary (star.models.vocab.WordVocab) where the others take a BPE tokenizer.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from torch import nn

# method -> (config, spotter, captioner) as "module:class"; imported on first use, so that importing one building
# block (e.g. star.models.hashgrid) does not pull in transformers. A captioner with a GPT-2 decoder lives in a module
# of its own, so that the spotter's module (its code hash) does not include the decoder.
METHODS = {
    "sdvc": ("star.models.sdvc:SDVCConfig", "star.models.sdvc:SDVCSpotter", "star.models.sdvc:SDVCCaptioner"),
    "delta": ("star.models.delta:DeltaConfig", "star.models.delta:DeltaSpotter",
              "star.models.delta_captioner:DeltaCaptioner"),
    "star": ("star.models.star:STaRConfig", "star.models.star:STaRSpotter",
             "star.models.star_captioner:STaRCaptioner"),
}
PRESETS = ("tiny", "paper")


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (expected one of {', '.join(METHODS)})")


def stage_module(method: str, stage: str) -> str:
    """The module of `method`'s model for `stage` ('spotting' or 'captioning'): what its code hash starts from."""
    _check(method)
    return METHODS[method][1 if stage == "spotting" else 2].split(":")[0]


def _method(method: str) -> tuple[type, type, type]:
    """(config class, spotter class, captioner class) of `method`."""
    _check(method)
    found = []
    for target in METHODS[method]:
        module, name = target.split(":")
        found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def model_config(method: str, preset: str = "tiny", overrides: dict[str, Any] | None = None):
    """The method's config: `preset` ('tiny' or 'paper'), then `overrides` (field -> value; `decoder` takes a
    dict of DecoderConfig fields). An unknown field raises a ValueError naming it."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r} (expected one of {', '.join(PRESETS)})")
    cfg = getattr(_method(method)[0], preset)()
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


def build_spotter(method: str, cfg, feature_dim: int) -> nn.Module:
    return _method(method)[1](cfg, feature_dim)


def build_captioner(method: str, cfg, feature_dim: int, tokenizer) -> nn.Module:
    return _method(method)[2](cfg, feature_dim, tokenizer)


__all__ = ["METHODS", "PRESETS", "build_captioner", "build_spotter", "model_config", "stage_module"]
