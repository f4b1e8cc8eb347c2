"""Where the workflow puts each stage's outputs under its results folder: the one statement of the layout, read by
the workflow's rules (workflow/rules/common.smk) and by the commands that find a run's outputs (`star export`).
Paths are relative to the results folder; the fields are wildcards in the rules."""

from __future__ import annotations

MODEL_DIR = "{stage}/{method}/{encoder}/{variant}"      # model.safetensors, train.json, train_log.csv
MODEL = "model.safetensors"
METRICS = "metrics/{method}/{encoder}/{variant}/{anchors}@{window}.json"


def model_dir(stage: str, method: str, encoder: str, variant: str) -> str:
    return MODEL_DIR.format(stage=stage, method=method, encoder=encoder, variant=variant)


def model_file(stage: str, method: str, encoder: str, variant: str) -> str:
    return f"{model_dir(stage, method, encoder, variant)}/{MODEL}"


def metrics_file(method: str, encoder: str, variant: str, anchors: str, window) -> str:
    return METRICS.format(method=method, encoder=encoder, variant=variant, anchors=anchors, window=window)
