"""The checkpoint folder `star caption` reads and `star export` writes: tensors in safetensors, settings in JSON.

    star export star-checkpoint [--from-results results] [--method star] [--encoder pptimesformer]
        [--variant default]

    star-checkpoint/
      config.json                 the pipeline sections the models ran with (decode, features, positions, model,
                                  spotting, captioning): what `star caption` runs
      README.md                   model card: method, data, config hash, training, metrics
      encoder/config.json         the PP-TimesFormer settings and the sha256 of the weights it was exported from
      encoder/model.safetensors   its weights
      spotting/config.json        the spotter: method, model config, feature rate and dimension, provenance
      spotting/model.safetensors  its weights (+ the feature standardisation)
      captioning/...              the captioner, likewise, with its tokenizer's files

Each model folder is the Hugging Face layout (`save_pretrained`-style). Nothing is unpickled: safetensors holds
only tensors and JSON holds only data, so a checkpoint from someone else cannot run code. A folder in the old
pickled layout (encoder.pdparams, spotting.pt, captioning.pt) is refused without being read.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from star import __version__
from star import config as star_config
from star import layout
from star import registry
from star.data.cache import cache_attrs
from star.errors import InputError
from star.provenance import sha256_file, sha256_text
from star.variants import spotting_variant

CONFIG, CARD, ENCODER_DIR, SPOTTING, CAPTIONING = "config.json", "README.md", "encoder", "spotting", "captioning"
WEIGHTS = "model.safetensors"
REQUIRED = (CONFIG, f"{ENCODER_DIR}/{WEIGHTS}", f"{ENCODER_DIR}/{CONFIG}", *(f"{m}/{f}" for m in (SPOTTING, CAPTIONING)
                                                                            for f in (CONFIG, WEIGHTS)))
PICKLED = ("encoder.pdparams", "spotting.pt", "captioning.pt", "config.yaml")   # the old layout


class CheckpointError(InputError):
    """A checkpoint folder that is missing files, or a workflow run a checkpoint cannot be made from."""


def say(message: str) -> None:
    print(f"star export: {message}", flush=True)


# ---- reading ---------------------------------------------------------------------------------------------------

def check_checkpoint(directory: Path) -> dict[str, Path]:
    """{'config', 'encoder', 'spotting', 'captioning'} paths of a complete checkpoint folder whose every weight
    file is safetensors; an error naming what is missing or refused (checked before any work)."""
    from safetensors import SafetensorError, safe_open

    old = [name for name in PICKLED if (directory / name).exists()]
    if old and not (directory / CONFIG).is_file():
        raise CheckpointError(f"{directory}: a checkpoint in the old pickled layout ({', '.join(old)}) is refused, "
                              "as pickles can run code; export it again with `star export`")
    missing = [name for name in REQUIRED if not (directory / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{directory}: checkpoint incomplete, missing {', '.join(missing)} (looked in {directory.resolve()}; "
            f"`star export {directory} --from-results results` makes one from a workflow run)")
    for part in (ENCODER_DIR, SPOTTING, CAPTIONING):
        weights = directory / part / WEIGHTS
        try:
            with safe_open(weights, "np"):
                pass
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{weights}: not a safetensors file ({exc}); a checkpoint holds tensors only, "
                                  "never pickles") from None
    return {"config": directory / CONFIG, "encoder": directory / ENCODER_DIR / WEIGHTS,
            "spotting": directory / SPOTTING, "captioning": directory / CAPTIONING}


def checkpoint_config(path: Path, override: str | None) -> dict:
    """The checkpoint's config.json, validated, with --config (inline JSON or a YAML file) merged over it."""
    try:
        cfg = json.loads(path.read_text())
    except ValueError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if override:
        cfg = star_config.deep_merge(cfg, star_config.read_value(override)[0])
    return star_config.validate(cfg, where=f"{path}" + " + --config" * bool(override))


# ---- writing ---------------------------------------------------------------------------------------------------

def provenance_config(path: Path, provenance: dict) -> dict:
    if not provenance.get("config"):
        raise CheckpointError(f"{path}: no configuration in its provenance")
    return json.loads(provenance["config"])


def workflow_path(results: Path, recorded: str) -> Path:
    """A path a workflow stage recorded (relative to the workflow folder, the parent of results/)."""
    path = Path(recorded)
    return path if path.is_absolute() else results.parent / path


def run_config(results: Path, encoder: str, provenance: dict) -> tuple[dict, Path]:
    """(the pipeline sections the models ran with, the encoder weights): the models' provenance gives model,
    spotting and captioning; the caches the captioner was trained on give features, decode and positions."""
    cfg = {}
    for stage in ("spotting", "captioning"):
        used = provenance_config(results / stage, provenance[stage])
        cfg.update(model=used["model"], **{stage: used[stage]})
    inputs = [workflow_path(results, p) for p in provenance["captioning"].get("inputs", [])]
    features = next((p for p in inputs if p.parts[-4:-2] == ("features", encoder)), None)
    positions = next((p for p in inputs if "positions" in p.parts[:-2]), None)
    if features is None or not features.is_file():
        raise CheckpointError(f"the features cache the captioner was trained on is gone ({features})")
    attrs = cache_attrs(features)
    cfg["features"] = {"encoders": [encoder], encoder: provenance_config(features, attrs["provenance"])}
    weights = workflow_path(results, attrs["provenance"]["weights"])
    frames = next(iter(attrs["provenance"]["sources"]), None)
    if frames and workflow_path(results, frames).is_file():
        frames = workflow_path(results, frames)
        cfg["decode"] = provenance_config(frames, cache_attrs(frames)["provenance"])
    if positions is not None and positions.is_file():
        cfg["positions"] = provenance_config(positions, cache_attrs(positions)["provenance"])
    cfg["features"][encoder]["weights"] = None   # the checkpoint's own encoder/model.safetensors
    return star_config.validate(cfg, where=f"config assembled from {results}"), weights


def model_card(cfg: dict, meta: dict, method: str, variant: str, encoder: str, metrics: Path, config_hash: str) -> str:
    training = meta["captioning"]["training"]
    games = sorted({Path(p).parent.name for p in meta["captioning"]["provenance"].get("inputs", [])})
    scores = json.loads(metrics.read_text()) if metrics.is_file() else None
    lines = [
        f"# STaR pipeline checkpoint: {method} ({variant}) on {encoder} features", "",
        "Dense video captioning of football matches: `star caption VIDEO --checkpoint THIS_FOLDER`.", "",
        f"- star version: {__version__}",
        f"- config hash (sha256 of config.json's canonical JSON, 16 digits): `{config_hash}`",
        f"- data: {cfg['model']['preset']} models trained on {len(games)} games' {encoder} caches "
        f"(train split, early-stopped on valid), features at {meta['captioning']['fps']:g} fps, "
        f"{meta['captioning']['feature_dim']}-d",
        f"- captioner: best valid loss {training['best_valid_loss']:.4f} at step {training['best_step']} of "
        f"{training['steps']}; spotter: best valid loss {meta['spotting']['training']['best_valid_loss']:.4f}",
    ]
    if scores is None:
        lines.append(f"- metrics: not evaluated ({metrics} was not found)")
    else:
        shown = {k: v for k, v in scores.get("metrics", {}).items() if isinstance(v, (int, float))}
        lines.append(f"- metrics ({metrics.name}): " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(shown.items())))
    lines += ["", "Weights are safetensors and settings JSON: loading this folder runs no code from it.", ""]
    return "\n".join(lines)


def export_checkpoint(out: Path, results: Path, method: str, encoder: str, variant: str) -> None:
    """A checkpoint folder from a workflow run's encoder and models, with the config sections they ran with."""
    from safetensors.numpy import save_file

    from star.features.timesformer import read_weights
    from star.model_file import read_model_file, save_pretrained

    if registry.method(method).kind == "dense":
        raise CheckpointError(f"{method} is an end-to-end method: `star caption` runs a spotter and a captioner, and "
                              "checkpoints of end-to-end methods are not supported yet")
    models = {SPOTTING: results / layout.model_file(SPOTTING, method, encoder, spotting_variant(variant)),
              CAPTIONING: results / layout.model_file(CAPTIONING, method, encoder, variant)}
    missing = [str(p) for p in models.values() if not p.is_file()]
    if missing:
        raise CheckpointError(f"no trained model at {', '.join(missing)}: run `snakemake {missing[0]}` first")
    if encoder != "pptimesformer":
        raise CheckpointError(f"{models[CAPTIONING]}: the models read {encoder} features, which `star caption` "
                              "cannot compute from a video (only pptimesformer)")
    provenance = {stage: read_model_file(path)[0]["provenance"] for stage, path in models.items()}
    cfg, weights = run_config(results, encoder, provenance)
    if out.exists() and any(out.iterdir()) and not (out / CONFIG).is_file():
        raise CheckpointError(f"{out}: exists and is not a checkpoint folder; not overwriting it")
    staging = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        meta = {stage: save_pretrained(staging / stage, path) for stage, path in models.items()}
        (staging / ENCODER_DIR).mkdir()
        save_file(read_weights(weights), str(staging / ENCODER_DIR / WEIGHTS), metadata={"format": "np"})
        encoder_cfg = {**cfg["features"][encoder], "exported_from_sha256": sha256_file(weights)}
        (staging / ENCODER_DIR / CONFIG).write_text(json.dumps(encoder_cfg, indent=1, sort_keys=True) + "\n")
        text = star_config.to_json(cfg)
        (staging / CONFIG).write_text(json.dumps(cfg, indent=1) + "\n")
        metrics = results / layout.metrics_file(method, encoder, variant, "spots", 30)
        (staging / CARD).write_text(model_card(cfg, meta, method, variant, encoder, metrics,
                                               sha256_text(text)[:16]))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"checkpoint written to {out} ({', '.join(REQUIRED)}, {CARD})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="checkpoint folder to write (e.g. star-checkpoint)")
    parser.add_argument("--from-results", type=Path, default=Path("results"), help="the run's results folder")
    parser.add_argument("--method", default="star", choices=list(registry.METHODS))
    parser.add_argument("--encoder", default="pptimesformer")
    parser.add_argument("--variant", default="default")


def run(args: argparse.Namespace) -> int:
    export_checkpoint(args.out, args.from_results, args.method, args.encoder, args.variant)
    return 0
