"""`star caption`: caption a match video with one command, from a checkpoint folder.

    star caption <game>/1_224p.mkv --checkpoint star-checkpoint [--half 1] [--labels Labels-caption.json]
        [--positions-backend classical|gamestate_json|sngamestate|none] [--out DIR]

The half video is decoded at `decode.fps` (streamed to a temporary HDF5 under --out), PP-TimesFormer features are
extracted with the checkpoint's encoder, players are localized (only when a model reads positions), every second
is scored and NMS keeps the spots, and each spot is captioned. --out (default: the video's folder) receives

    results_dense_captioning.json   the official predictions (a file already there keeps its other half's)
    <video stem>.srt                SubRip subtitles
    <video stem>.html               a self-contained timeline: captions, the ground truth when labels exist
                                    (--labels or Labels-caption.json beside the video), a click seeks the video

A checkpoint folder holds (`star caption --export-checkpoint DIR` assembles one from a workflow run):

    config.yaml        decode, features (pptimesformer), positions, model, spotting and captioning sections
    encoder.pdparams   the PP-TimesFormer weights the features were extracted with
    spotting.pt        the spotter (`star spotting-train`'s model.pt)
    captioning.pt      the captioner (`star captioning-train`'s model.pt)

    star caption --export-checkpoint star-checkpoint [--from-results results] [--method star]
        [--encoder pptimesformer] [--variant default]

The export reads the sections each stage ran with from the provenance of the models and caches it copies.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
import yaml

from star import config as star_config
from star.data.cache import cache_attrs, write_cache
from star.data.games import Game
from star.data.jsonio import read_json_object
from star.data.soccernet import load_labels, parse_game_time
from star.errors import InputError
from star.eval.dvc import write_predictions
from star.export import write_html, write_srt
from star.infer.captions import caption_anchors
from star.infer.spots import spot_half
from star.positions.localizer import BACKENDS
from star.provenance import record, write_text_atomic
from star.train.common import load_model, spotting_variant
from star.train.datasets import Half, feature_attrs
from star.train.loop import pick_device
from star.video.decode import VideoError, decode_half

CONFIG, ENCODER, SPOTTING, CAPTIONING = "config.yaml", "encoder.pdparams", "spotting.pt", "captioning.pt"
CHECKPOINT_FILES = (CONFIG, ENCODER, SPOTTING, CAPTIONING)
SECTIONS = ("decode", "features", "positions", "model", "spotting", "captioning")
RESULTS_JSON = "results_dense_captioning.json"


class CheckpointError(InputError):
    """A checkpoint folder that is missing files, or a workflow run a checkpoint cannot be made from."""


def say(message: str) -> None:
    print(f"star caption: {message}", flush=True)


# ---- the checkpoint folder -------------------------------------------------------------------------------------

def checkpoint_files(directory: Path) -> dict[str, Path]:
    """Path of every checkpoint file; an error naming each missing one and the folder looked in."""
    files = {name: directory / name for name in CHECKPOINT_FILES}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise CheckpointError(
            f"{directory}: checkpoint incomplete, missing {', '.join(missing)} (looked in {directory.resolve()}; "
            f"a checkpoint holds {', '.join(CHECKPOINT_FILES)}: `star caption --export-checkpoint {directory} "
            "--from-results results` makes one from a workflow run)")
    return files


def provenance_config(path: Path, provenance: dict) -> dict:
    if not provenance.get("config"):
        raise CheckpointError(f"{path}: no configuration in its provenance")
    return json.loads(provenance["config"])


def workflow_path(results: Path, recorded: str) -> Path:
    """A path a workflow stage recorded (relative to the workflow folder, the parent of results/)."""
    path = Path(recorded)
    return path if path.is_absolute() else results.parent / path


def export_checkpoint(out: Path, results: Path, method: str, encoder: str, variant: str) -> None:
    """Copy a workflow run's encoder and models into a checkpoint folder, with the config sections they ran with."""
    spotting = results / f"spotting/{method}/{encoder}/{spotting_variant(variant)}/model.pt"
    captioning = results / f"captioning/{method}/{encoder}/{variant}/model.pt"
    missing = [str(p) for p in (spotting, captioning) if not p.is_file()]
    if missing:
        raise CheckpointError(f"no trained model at {', '.join(missing)}: run `snakemake {missing[0]}` first")
    if encoder != "pptimesformer":
        raise CheckpointError(f"{captioning}: the models read {encoder} features, which `star caption` cannot "
                              "compute from a video (only pptimesformer)")
    cfg = {}
    provenance = {stage: torch.load(path, map_location="cpu", weights_only=False)["provenance"]
                  for stage, path in (("spotting", spotting), ("captioning", captioning))}
    for stage, path in (("spotting", spotting), ("captioning", captioning)):
        used = provenance_config(path, provenance[stage])
        cfg.update(model=used["model"], **{stage: used[stage]})
    # the caches the captioner was trained on recorded the features, decode and positions sections
    inputs = [workflow_path(results, p) for p in provenance["captioning"].get("inputs", [])]
    features = next((p for p in inputs if p.parts[-4:-2] == ("features", encoder)), None)
    positions = next((p for p in inputs if "positions" in p.parts[:-2]), None)
    if features is None or not features.is_file():
        raise CheckpointError(f"{captioning}: the features cache it was trained on is gone ({features})")
    attrs = cache_attrs(features)
    cfg["features"] = {"encoders": [encoder], encoder: provenance_config(features, attrs["provenance"])}
    weights = workflow_path(results, attrs["provenance"]["weights"])
    frames = next(iter(attrs["provenance"]["sources"]), None)
    if frames and workflow_path(results, frames).is_file():
        frames = workflow_path(results, frames)
        cfg["decode"] = provenance_config(frames, cache_attrs(frames)["provenance"])
    if positions is not None and positions.is_file():
        cfg["positions"] = provenance_config(positions, cache_attrs(positions)["provenance"])
    cfg["features"][encoder]["weights"] = None   # the checkpoint's own encoder.pdparams
    star_config.validate(cfg, where=f"config assembled from {results}")
    out.mkdir(parents=True, exist_ok=True)
    for source, name in ((weights, ENCODER), (spotting, SPOTTING), (captioning, CAPTIONING)):
        if not source.is_file():
            raise CheckpointError(f"{source}: missing (needed for the checkpoint's {name})")
        shutil.copyfile(source, out / name)
    write_text_atomic(out / CONFIG, f"# star caption checkpoint: {method} {variant} on {encoder}, from {results}\n"
                      + yaml.safe_dump(cfg, sort_keys=False))
    say(f"checkpoint written to {out} ({', '.join(CHECKPOINT_FILES)})")


def checkpoint_config(path: Path, override: str | None) -> dict:
    """The checkpoint's config.yaml, with --config (inline JSON or a YAML file) merged over it."""
    cfg = star_config.load(path)
    if override:
        cfg = star_config.validate(star_config.deep_merge(cfg, star_config.read_value(override)[0]),
                                   where=f"{path} + --config")
    return cfg


# ---- the stages ------------------------------------------------------------------------------------------------

def half_of(video: Path, given: int | None) -> int:
    """--half, else a leading `1_`/`2_` of the file name (SoccerNet's 1_224p.mkv), else 1."""
    if given is not None:
        return given
    match = re.match(r"([12])_", video.name)
    return int(match.group(1)) if match else 1


def reads_positions(*contents: dict) -> bool:
    return any(getattr(c["model_cfg"], "use_positions", False) for c in contents)


def extract(frames: Path, out: Path, weights: Path, cfg: dict, threads: int) -> None:
    from star.features import extract as features_extract

    features_extract.run(argparse.Namespace(frames=str(frames), out=str(out), weights=str(weights),
                                            config=cfg, threads=threads))


def localize(backend: str, video: Path, frames: Path, out: Path, work: Path, game: str, half: int,
             cfg: dict) -> None:
    """The positions cache of the half; `none` writes one with no calibrated sample (the model sees no player)."""
    if backend == "none":
        from star.positions.localizer import Positions, samples_spanned

        attrs = cache_attrs(frames)
        empty = Positions.empty(samples_spanned(int(attrs["length"]), float(attrs["fps"]), cfg["fps"]),
                                cfg["max_players"])
        write_cache(out, "positions", empty.arrays(), record("positions_none", cfg), game=game, half=half,
                    fps=float(cfg["fps"]), backend="none", max_players=cfg["max_players"])
        return
    from star.positions import localize as positions_localize

    positions_localize.run(argparse.Namespace(
        game=game, half=half, out=str(out), config={**cfg, "backend": backend}, frames=str(frames),
        game_dir=str(video.parent), video=str(video), work=str(work)))


def other_halves(path: Path, game: str, half: int) -> list[dict]:
    """Predictions of the other half already in `path` (the same game captioned half by half)."""
    if not path.is_file():
        return []
    data = read_json_object(path, InputError, "predictions file")
    if data.get("UrlLocal") != game:
        return []
    kept = []
    for row in data.get("predictions", []):
        other, seconds = parse_game_time(row["gameTime"])
        if other != half:
            kept.append({"half": other, "seconds": seconds, "label": row.get("label", "comments"),
                         "confidence": float(row.get("confidence", 1.0)), "comment": row["comment"]})
    return kept


def ground_truth(args: argparse.Namespace, half: int) -> list[dict] | None:
    path = args.labels or args.video.parent / "Labels-caption.json"
    if args.labels is None and not path.is_file():
        return None
    return [{"seconds": a.seconds, "label": a.label, "comment": a.anonymized} for a in load_labels(path).half(half)]


def caption_video(args: argparse.Namespace) -> int:
    video, half = args.video, half_of(args.video, args.half)
    if not video.is_file():
        raise VideoError(f"{video}: video file does not exist")
    files = checkpoint_files(args.checkpoint)
    cfg = checkpoint_config(files[CONFIG], args.config)
    truth = ground_truth(args, half)   # a bad labels file fails before the long stages
    game = "/".join(video.resolve().parent.parts[-3:])   # league/season/game, the tree's UrlLocal
    backend = args.positions_backend or cfg["positions"]["backend"]
    torch.set_num_threads(args.threads)
    device = pick_device(cfg["model"]["device"])
    spotter, spot_content = load_model(files[SPOTTING], "spotting", device)
    captioner, caption_content = load_model(files[CAPTIONING], "captioning", device)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out, prefix=".star-caption-") as tmp:
        work = Path(tmp)
        say(f"[1/5] decoding {video} (half {half}) at {cfg['decode']['fps']:g} fps")
        decode_half(video, work / "frames.h5", game, half, cfg["decode"])
        say(f"[2/5] extracting PP-TimesFormer features with {files[ENCODER]}")
        extract(work / "frames.h5", work / "features.h5", files[ENCODER], cfg["features"]["pptimesformer"],
                args.threads)
        positions = None
        if reads_positions(spot_content, caption_content):
            say(f"[3/5] localizing players ({backend})")
            positions = work / "positions.h5"
            localize(backend, video, work / "frames.h5", positions, work, game, half, cfg["positions"])
        else:
            say("[3/5] the models read no positions: skipping player localization")
        say("[4/5] spotting")
        spots, _, _ = spot_half(spotter, spot_content, work / "features.h5", positions, cfg["spotting"], device)
        say(f"[5/5] captioning {len(spots)} spots")
        length, fps, dim = feature_attrs(work / "features.h5")
        halves = [Half(Game("", game, ""), half, work / "features.h5", positions, (), length, fps, dim)]
        wanted = [{"index": 0, "half": half, **spot} for spot in spots]
        captions = caption_anchors(captioner, caption_content, halves, wanted, cfg["captioning"], device)
    results = args.out / RESULTS_JSON
    write_predictions(results, game, other_halves(results, game, half) + captions)
    write_srt(args.out / f"{video.stem}.srt", captions)
    write_html(args.out / f"{video.stem}.html", video, half, length / fps, captions, truth,
               title=f"{game} ({video.name})")
    say(f"{len(captions)} captions -> {results}, {video.stem}.srt, {video.stem}.html in {args.out}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, nargs="?", help="half video, e.g. <game>/1_224p.mkv")
    parser.add_argument("--checkpoint", type=Path, default=Path("star-checkpoint"),
                        help=f"checkpoint folder: {', '.join(CHECKPOINT_FILES)} (default: star-checkpoint)")
    parser.add_argument("--half", type=int, choices=(1, 2), help="the video's half (default: from a leading 1_/2_)")
    parser.add_argument("--labels", type=Path, help="ground truth to show (default: Labels-caption.json beside the "
                                                    "video, if any)")
    parser.add_argument("--positions-backend", choices=(*BACKENDS, "none"),
                        help="player localization (default: the checkpoint's positions.backend)")
    parser.add_argument("--out", type=Path, help="output folder (default: the video's folder)")
    parser.add_argument("--config", help="overrides of the checkpoint's config.yaml: inline JSON or a YAML file")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="CPU threads")
    export = parser.add_argument_group("making a checkpoint from a workflow run (instead of captioning)")
    export.add_argument("--export-checkpoint", type=Path, metavar="DIR", help="checkpoint folder to write")
    export.add_argument("--from-results", type=Path, default=Path("results"), help="the run's results folder")
    export.add_argument("--method", default="star", choices=["sdvc", "delta", "star"])
    export.add_argument("--encoder", default="pptimesformer")
    export.add_argument("--variant", default="default")


def run(args: argparse.Namespace) -> int:
    if args.export_checkpoint:
        export_checkpoint(args.export_checkpoint, args.from_results, args.method, args.encoder, args.variant)
        return 0
    if args.video is None:
        raise InputError("no video given: star caption VIDEO [--checkpoint DIR] (or --export-checkpoint DIR)")
    args.out = args.out or args.video.parent
    return caption_video(args)
