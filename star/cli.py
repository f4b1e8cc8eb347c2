"""`star <command> ...`: one entry point per pipeline stage, and the user-facing tools.

Each command lives in its module as `add_arguments(parser)` + `run(args)`; modules are imported only when their
command runs, so `star evaluate` does not pay for importing Paddle.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from star.errors import InputError

# command -> (module, one-line help)
COMMANDS = {
    "world": ("star.world.synthesize", "build the synthetic broadcast world (SoccerNet tree)"),
    "manifest": ("star.data.manifest", "write the games manifest (id, split, path) of a config"),
    "decode": ("star.video.decode", "decode one half video to frames at a fixed fps (HDF5)"),
    "encoder-finetune": ("star.features.finetune", "fine-tune the PP-TimesFormer on train-split event labels"),
    "features-extract": ("star.features.extract", "PP-TimesFormer clip features of one half (HDF5)"),
    "features-import": ("star.features.import_npy", "import SoccerNet's precomputed .npy features (HDF5)"),
    "features-probe": ("star.features.probe", "linear probe: do features carry event information?"),
    "positions-localize": ("star.positions.localize", "calibrated player positions of one half (HDF5)"),
    "positions-evaluate": ("star.positions.evaluate", "score positions against Game State ground truth"),
    "spotting-train": ("star.train.spotting", "train a method's spotter (background + caption labels per window)"),
    "spotting-infer": ("star.infer.spots", "spots of one half: sliding window + non-maximum suppression"),
    "captioning-train": ("star.train.captioning", "train a method's captioner on the train split's annotations"),
    "captioning-infer": ("star.infer.captions", "captions of one game at its spots (official predictions JSON)"),
    "evaluate": ("star.evaluate", "dense-captioning metrics of predictions (official semantics, reproducible)"),
    "tables": ("star.eval.tables", "CSV and Markdown tables from `star evaluate --json` metric files"),
    "download": ("star.data.download", "SoccerNet labels and features with the SoccerNet package's downloader"),
    "doctor": ("star.data.doctor", "check a SoccerNet data root: files, feature fps and dims, timestamps, splits"),
    "caption": ("star.caption", "caption a match video: JSON, SubRip subtitles and an HTML timeline"),
    "export": ("star.checkpoint", "checkpoint folder for `star caption` (safetensors + JSON) from a workflow run"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="star", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS),
                        help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv[:1] or ["--help"])
    module_name, help_text = COMMANDS[argv[0]]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"star {argv[0]}", description=help_text)
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (InputError, FileNotFoundError) as exc:
        # Bad input: one clear line naming the file and the problem, no traceback.
        print(f"star {argv[0]}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
