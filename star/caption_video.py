"""`star caption`: caption a match video with one command, from a checkpoint folder.

    star caption <game>/1_224p.mkv --checkpoint star-checkpoint [--half 1] [--labels Labels-caption.json]
        [--positions-backend classical|gamestate_json|sngamestate|none] [--out DIR]

The half video is decoded at `decode.fps` (streamed to a temporary HDF5 under --out), features are extracted
with the checkpoint's video encoder (PP-TimesFormer), players are localized (only when a model reads positions),
every second is scored and NMS keeps the spots, and each spot is captioned. --out (default: the video's folder) receives

    results_dense_captioning.json   the official predictions (a file already there keeps its other half's)
    <video stem>.srt                SubRip subtitles
    <video stem>.html               the viewer page (star.viewer): the video with the captions as subtitles, the
                                    spotter's confidence, the ground truth when labels exist (--labels or
                                    Labels-caption.json beside the video); a click seeks the video

The checkpoint folder (star.checkpoint; `star export DIR` makes one from a workflow run) holds safetensors weights
and JSON settings only, and is checked whole before any work. So is --out: a predictions file there that belongs
to another game, or that is malformed, stops the command before decoding (another game's captions are never
overwritten).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import torch

from star import registry
from star.checkpoint import check_checkpoint, checkpoint_config
from star.data.cache import POSITIONS_FORMAT, cache_attrs, write_cache
from star.data.games import Game
from star.data.halves import Half, feature_attrs
from star.data.jsonio import read_json_object
from star.data.soccernet import load_labels, parse_game_time
from star.device import pick_device
from star.errors import InputError
from star.data.predictions import write_predictions
from star.features.extract import extract_half
from star.infer.captions import caption_anchors
from star.infer.spots import spot_half
from star.model_file import load_model
from star.positions.backends import BACKENDS
from star.provenance import record, work_dir
from star.video.decode import VideoError, decode_half
from star.viewer import HalfView, write_page, write_srt

SECTIONS = ("decode", "features", "positions", "model", "spotting", "captioning")
RESULTS_JSON = "results_dense_captioning.json"


def say(message: str) -> None:
    print(f"star caption: {message}", flush=True)


# ---- the stages ------------------------------------------------------------------------------------------------

def half_of(video: Path, given: int | None) -> int:
    """--half, else a leading `1_`/`2_` of the file name (SoccerNet's 1_224p.mkv), else 1."""
    if given is not None:
        return given
    match = re.match(r"([12])_", video.name)
    return int(match.group(1)) if match else 1


def reads_positions(*contents: dict) -> bool:
    return any(getattr(c["model_cfg"], "use_positions", False) for c in contents)


def localize(backend: str, video: Path, frames: Path, out: Path, work: Path, game: str, half: int,
             cfg: dict) -> None:
    """The positions cache of the half; `none` writes one with no calibrated sample (the model sees no player)."""
    if backend == "none":
        from star.positions.backends import Positions, samples_spanned

        attrs = cache_attrs(frames)
        empty = Positions.empty(samples_spanned(int(attrs["length"]), float(attrs["fps"]), cfg["fps"]),
                                cfg["max_players"])
        write_cache(out, "positions", empty.arrays(), record("positions_none", cfg), game=game, half=half,
                    fps=float(cfg["fps"]), backend="none", max_players=cfg["max_players"], format=POSITIONS_FORMAT)
        return
    from star.positions.localize import localize_half

    localize_half({**cfg, "backend": backend}, out, game, half, frames=frames, game_dir=video.parent, video=video,
                  work=work)


def other_halves(path: Path, game: str, half: int) -> list[dict]:
    """Predictions of the other half already in `path` (the same game captioned half by half). A file of another
    game, or one that is malformed, is an error: checked before the work, so nothing is overwritten or lost."""
    if not path.is_file():
        return []
    data = read_json_object(path, InputError, "predictions file")
    if data.get("UrlLocal") != game:
        raise InputError(f"{path}: holds the predictions of game {data.get('UrlLocal')!r}, not {game!r}; "
                         "caption each game into its own --out folder")
    kept = []
    for i, row in enumerate(data.get("predictions", [])):
        try:
            other, seconds = parse_game_time(row["gameTime"])
            comment = row["comment"]
            confidence = float(row.get("confidence", 1.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: prediction {i} is malformed ({type(exc).__name__}: {exc}); move the file "
                             "away or fix it") from None
        if other != half:
            kept.append({"half": other, "seconds": seconds, "label": row.get("label", "comments"),
                         "confidence": confidence, "comment": comment})
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
    files = check_checkpoint(args.checkpoint)
    cfg = checkpoint_config(files["config"], args.config)
    truth = ground_truth(args, half)   # a bad labels file fails before the long stages
    game = "/".join(video.resolve().parent.parts[-3:])   # league/season/game, the tree's UrlLocal
    results = args.out / RESULTS_JSON
    kept = other_halves(results, game, half)   # so does a predictions file of another game, or a broken one
    backend = args.positions_backend or cfg["positions"]["backend"]
    torch.set_num_threads(args.threads)
    device = pick_device(cfg["model"]["device"])
    spotter, spot_content = load_model(files["spotting"], "spotting", device)
    captioner, caption_content = load_model(files["captioning"], "captioning", device)
    args.out.mkdir(parents=True, exist_ok=True)
    with work_dir(args.out, ".star-caption-") as tmp:   # a hard-killed run's folder is removed first
        work = Path(tmp)
        say(f"[1/5] decoding {video} (half {half}) at {cfg['decode']['fps']:g} fps")
        decode_half(video, work / "frames.h5", game, half, cfg["decode"])
        encoder = cfg["features"]["encoders"][0]   # the checkpoint's (star export writes one)
        say(f"[2/5] extracting {registry.encoder(encoder).display} features with {files['encoder']}")
        extract_half(encoder, cfg["features"][encoder], work / "frames.h5", work / "features.h5",
                     str(files["encoder"]), args.threads)
        positions = None
        if reads_positions(spot_content, caption_content):
            say(f"[3/5] localizing players ({backend})")
            positions = work / "positions.h5"
            localize(backend, video, work / "frames.h5", positions, work, game, half, cfg["positions"])
        else:
            say("[3/5] the models read no positions: skipping player localization")
        say("[4/5] spotting")
        spots, confidence, _ = spot_half(spotter, spot_content, work / "features.h5", positions, cfg["spotting"],
                                         device)
        say(f"[5/5] captioning {len(spots)} spots")
        length, fps, dim = feature_attrs(work / "features.h5")
        halves = [Half(Game("", game, ""), half, work / "features.h5", positions, (), length, fps, dim)]
        wanted = [{"index": 0, "half": half, **spot} for spot in spots]
        captions = caption_anchors(captioner, caption_content, halves, wanted, cfg["captioning"], device)
    write_predictions(results, game, kept + captions)
    write_srt(args.out / f"{video.stem}.srt", captions)
    view = HalfView(half, length / fps, captions, truth, [float(c) for c in confidence])
    write_page(args.out / f"{video.stem}.html", f"{game} ({video.name})", [view], {half: video})
    say(f"{len(captions)} captions -> {results}, {video.stem}.srt, {video.stem}.html in {args.out}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, nargs="?", help="half video, e.g. <game>/1_224p.mkv")
    parser.add_argument("--checkpoint", type=Path, default=Path("star-checkpoint"),
                        help="checkpoint folder written by `star export` (default: star-checkpoint)")
    parser.add_argument("--half", type=int, choices=registry.halves(),
                        help="the video's half (default: from a leading 1_/2_)")
    parser.add_argument("--labels", type=Path, help="ground truth to show (default: Labels-caption.json beside the "
                                                    "video, if any)")
    parser.add_argument("--positions-backend", choices=(*BACKENDS, "none"),
                        help="player localization (default: the checkpoint's positions.backend)")
    parser.add_argument("--out", type=Path, help="output folder (default: the video's folder)")
    parser.add_argument("--config", help="overrides of the checkpoint's config.json: inline JSON or a YAML file")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="CPU threads")


def run(args: argparse.Namespace) -> int:
    if args.video is None:
        raise InputError("no video given: star caption VIDEO [--checkpoint DIR] (`star export DIR` makes a "
                         "checkpoint from a workflow run)")
    args.out = args.out or args.video.parent
    return caption_video(args)
