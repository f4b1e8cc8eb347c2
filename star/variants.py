"""Variants name Table 3's and Table 6's ablations of STaR (a method registered with `variants=True`): `default`,
or `-`-joined switches `blurK` (feature blurring K), `noglobal` (no global features), `nopos` (no positions:
STaR without its SSS) and `teamball` (the SSS also reads team side, role and the ball: `sss_inputs:
xy_team_role_ball`), e.g. `blur10-nopos`. `variant_name` and `parse_variant` are inverses; the workflow builds
its job graph from them, so this module imports nothing but the standard library.

Blurring is an ablation of captioning only: a captioning variant's spots come from `spotting_variant(v)`.
"""

from __future__ import annotations

import re

from star.errors import InputError

SWITCHES = {"noglobal": ("use_global", False), "nopos": ("use_positions", False),
            "teamball": ("sss_inputs", "xy_team_role_ball")}


def parse_variant(variant: str) -> dict:
    """'blur10-nopos' -> {'blur': 10, 'use_positions': False}; 'default' -> {}."""
    overrides = {}
    for switch in ([] if variant == "default" else variant.split("-")):
        if switch in SWITCHES:
            key, value = SWITCHES[switch]
            overrides[key] = value
        elif (match := re.fullmatch(r"blur([1-9]\d*)", switch)):
            overrides["blur"] = int(match.group(1))
        else:
            raise InputError(f"variant {variant!r}: unknown switch {switch!r} (noglobal, nopos, teamball, blurK)")
    return overrides


def variant_name(blur: int = 1, use_global: bool = True, use_positions: bool = True, team_ball: bool = False) -> str:
    """The canonical variant of the switches (the same run serves every table that needs it)."""
    switches = ([f"blur{blur}"] if blur != 1 else []) + ([] if use_global else ["noglobal"])
    switches += [] if use_positions else ["nopos"]
    return "-".join(switches + (["teamball"] if team_ball else [])) or "default"


def spotting_variant(variant: str) -> str:
    """The spotter a captioning variant uses: the same switches without blurring."""
    kept = [s for s in variant.split("-") if not s.startswith("blur")]
    return "-".join(kept) or "default"
