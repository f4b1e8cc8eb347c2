"""The `paper` preset: docs/paper-preset.md lists every setting with the value the code uses; the values the
paper states are pinned; training length in epochs and the per-epoch cosine."""

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest

from star.config import PRESET_CONFIG, validate
from star.models import model_config
from star.train.common import method_config
from star.train.loop import epoch_cosine, schedule

DOC = Path(__file__).resolve().parents[1] / "docs" / "paper-preset.md"
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+?) \| ([^|]+?) \|$")
METHODS = ("star", "delta", "sdvc", "pdvc", "vid2seq")


def documented() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        if (match := ROW.match(line)):
            key, value, source = match.groups()
            assert key not in rows, f"{key} is listed twice"
            rows[key] = (value, source)
    return rows


def parse(text: str):
    words = {"null": None, "true": True, "false": False}
    if text in words:
        return words[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def model_leaves(method: str) -> dict:
    cfg = model_config(method, "paper")
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out |= {f"{method}.{f.name}.{g.name}": getattr(value, g.name) for g in dataclasses.fields(value)}
        else:
            out[f"{method}.{f.name}"] = value
    return out


def paper_settings() -> dict:
    """Every setting the preset carries -> the value the code uses."""
    cfg = validate({"model": {"preset": "paper"}})
    settings = {key: leaves(cfg)[key] for key in leaves(PRESET_CONFIG["paper"])}
    for method in METHODS:
        settings |= model_leaves(method)
    return settings


def test_every_setting_is_documented_with_the_value_the_code_uses():
    rows, settings = documented(), paper_settings()
    assert sorted(settings) == sorted(rows), "docs/paper-preset.md and the preset list different settings"
    for key, value in settings.items():
        assert parse(rows[key][0]) == value, f"{key}: docs say {rows[key][0]}, the code uses {value!r}"
        assert re.match(r"(paper|authors|DeLTA|sn-caption|PDVC|Vid2Seq|ours)", rows[key][1]), f"{key}: no source"


def test_values_from_the_paper_are_pinned():
    cfg = validate({"model": {"preset": "paper"}})
    star = model_config("star", "paper")
    assert cfg["captioning"]["max_tokens"] == 100                             # §4.1: text up to 100 tokens
    assert (star.dim, star.num_latents, star.global_depth) == (768, 8, 2)     # §4.1: d = 768, 8 latents, 2 layers
    assert (star.position_dim, star.max_players) == (24, 32)                  # §4.1: 24-d hash features x 32
    assert star.global_stride == 1 and star.use_global and star.use_positions  # §3.4: the whole half, with SSS
    for method in ("star", "delta"):                                          # §4.1: GPT-2 medium
        decoder = model_config(method, "paper").decoder
        assert (decoder.n_layer, decoder.n_embd, decoder.n_head) == (24, 1024, 16)
    rows = documented()
    paper_keys = ["captioning.max_tokens", "star.dim", "star.num_latents", "star.global_depth", "star.position_dim",
                  "star.max_players", "star.decoder.n_layer", "star.decoder.n_embd"]
    assert all(rows[k][1].startswith("paper") for k in paper_keys)


def test_the_authors_settings_and_that_config_files_win():
    cfg = validate({"model": {"preset": "paper"}})
    for stage in ("spotting", "captioning"):
        train = cfg[stage]["train"]
        assert (train["lr"], train["batch_size"], train["epochs"], train["schedule"], train["grad_clip"]) == (
            5e-5, 16, 15, "epoch_cosine", 1.0)
    assert (cfg["spotting"]["threshold"], cfg["spotting"]["nms_window_s"], cfg["spotting"]["selection"]) == (
        0.7, 30, None)
    mine = validate({"model": {"preset": "paper"}, "spotting": {"threshold": 0.5, "train": {"epochs": 3}}})
    assert mine["spotting"]["threshold"] == 0.5 and mine["spotting"]["train"]["epochs"] == 3
    assert mine["spotting"]["train"]["lr"] == 5e-5          # the rest of the section still the preset's
    tiny = validate({})
    assert tiny["spotting"]["train"]["epochs"] is None and tiny["spotting"]["threshold"] == 0.2


def test_ablations_use_the_same_preset():
    cfg = validate({"model": {"preset": "paper"}})
    full = method_config(cfg, "star")
    for variant, changed in (("blur10-nopos", {"blur": 10, "use_positions": False}),
                             ("noglobal", {"use_global": False})):
        ablated = method_config(cfg, "star", variant)
        assert ablated == dataclasses.replace(full, **changed)


class Items:
    def __init__(self, n):
        self.n = n

    def epoch_order(self, rng):
        return rng.permutation(self.n)


def test_training_length_in_epochs_and_the_per_epoch_cosine():
    cfg = {"steps": 1000, "epochs": 3, "batch_size": 16, "schedule": "epoch_cosine", "warmup_steps": 0}
    total, per_epoch, factor = schedule(Items(100), cfg, seed=0)
    assert (total, per_epoch) == (18, 6)                    # 100 // 16 = 6 whole batches an epoch, 3 epochs
    assert [factor(s) for s in (0, 5)] == [1.0, 1.0]         # held through epoch 0
    assert factor(6) == pytest.approx(0.75) and factor(12) == pytest.approx(0.25)  # (1 + cos(pi e / 3)) / 2
    steps, _, warm = schedule(Items(100), {**cfg, "epochs": None, "schedule": "warmup_cosine", "warmup_steps": 2},
                              seed=0)
    assert steps == 1000 and warm(0) == 0.5 and warm(1) == 1.0
    assert epoch_cosine(10, 15)(150) == pytest.approx(0.5 * (1 + math.cos(math.pi)))


def test_fit_trains_whole_epochs_and_validates_once_per_epoch(tmp_path):
    import torch

    from star.train.loop import fit

    class Pairs(torch.utils.data.Dataset):
        def __init__(self, n):
            self.x = torch.linspace(-1, 1, n)[:, None]

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

        def epoch_order(self, rng):
            return rng.permutation(len(self))

    def collate(items):
        return torch.stack(items)

    model = torch.nn.Linear(1, 1)
    loss = lambda m, x: ((m(x) - 2 * x) ** 2).mean()
    cfg = {"steps": 999, "epochs": 2, "schedule": "epoch_cosine", "batch_size": 4, "lr": 0.05, "weight_decay": 0.0,
           "warmup_steps": 0, "grad_clip": 1.0, "eval_every": None, "patience": 15, "checkpoint_every": 100,
           "workers": 0}
    curve = fit(model, loss, Pairs(10), Pairs(6), collate, cfg, seed=0, checkpoint=tmp_path / "ckpt",
                fingerprint="x", device=torch.device("cpu"))
    assert curve["steps"] == 4                                        # 2 epochs of 10 // 4 = 2 steps
    assert [c["step"] for c in curve["curve"]] == [2, 4]              # validation once per epoch
    assert np.isfinite(curve["best_valid_loss"])
