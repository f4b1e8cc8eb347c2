"""`star features-extract`: clip features of one half from its decoded frames, by any registered video encoder
(star/registry.py; PP-TimesFormer by default), one row per second of video.

    star features-extract --encoder pptimesformer --frames results/frames/<game>/1.h5 \
        --out results/features/pptimesformer/<game>/1.h5 [--weights W] [--config features.<encoder> section]

The frames cache is read in slices, one batch of clips at a time, so memory does not grow with the half's length.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from star import registry
from star.config import section
from star.data.cache import CacheWriter, open_cache
from star.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", default="pptimesformer", choices=registry.video_encoders(),
                        help="the video encoder (default pptimesformer)")
    parser.add_argument("--frames", required=True, help="frames cache of one half (HDF5, from star decode)")
    parser.add_argument("--out", required=True, help="features cache to write (HDF5)")
    parser.add_argument("--weights", help="the encoder's weights (overrides features.<encoder>.weights)")
    parser.add_argument("--config", help="features.<encoder> section: inline JSON or a YAML file")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="CPU threads")


def extract_half(encoder_name: str, cfg: dict, frames: str | Path, out: str | Path, weights: str | None = None,
                 threads: int = 1) -> int:
    """Write the features cache `out` of a frames cache with a video encoder; `cfg` is its validated section.
    Returns the feature dimension."""
    from star.features.encoder import encoder_class, encoder_module
    from star.provenance import code_hash, record

    encoder = encoder_class(encoder_name)(cfg, weights, threads)
    with open_cache(frames, "frames") as frames_h5:
        attrs = dict(frames_h5.attrs)
        if not len(frames_h5["times"]):
            raise InputError(f"{frames}: frames cache holds no frames")
        encoder.check(frames, frames_h5)
        provenance = record("features-extract", encoder.used(), code_hash(__name__, encoder_module(encoder_name)),
                            sources=[frames], **encoder.provenance())
        with CacheWriter(out, "features", provenance, game=attrs["game"], half=int(attrs["half"]),
                         fps=encoder.fps, dim=encoder.dim, encoder=encoder_name, **encoder.attrs()) as writer:
            for features in encoder.features(frames_h5):
                writer.append("features", features)
    print(f"star features-extract: wrote {Path(out)} ({encoder.dim}-d at {encoder.fps:g} fps)")
    return encoder.dim


def run(args: argparse.Namespace) -> int:
    cfg = section(f"features.{args.encoder}", args.config)
    extract_half(args.encoder, cfg, args.frames, args.out, args.weights, args.threads)
    return 0
