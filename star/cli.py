"""`star <command> ...`: the user tools, and one entry point per pipeline stage (what the workflow's rules run).

Each command lives in its module as `add_arguments(parser)` + `run(args)`; modules are imported only when their
command runs, so `star evaluate` does not pay for importing Paddle. `star <command> ARGS --and ARGS ...` runs several
calls of one command in turn in one process, every call's arguments parsed first: they share what the process
loads once (METEOR's JVM, a model, the imports).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from star import __version__
from star.errors import InputError

# command -> (module, one-line help)
USER_COMMANDS = {
    "caption": ("star.caption_video", "caption a match video: JSON, SubRip subtitles and a viewer page"),
    "evaluate": ("star.evaluate", "dense-captioning metrics of predictions (official semantics, reproducible)"),
    "tables": ("star.eval.tables", "CSV and Markdown tables from `star evaluate --json` metric files"),
    "download": ("star.data.download", "SoccerNet labels and features with the SoccerNet package's downloader"),
    "doctor": ("star.doctor", "check a SoccerNet data root: files, feature fps and dims, timestamps, splits"),
    "viewer": ("star.viewer", "a game's viewer page: video, subtitles, confidence, predicted vs ground truth"),
    "export": ("star.checkpoint", "checkpoint folder for `star caption` (safetensors + JSON) from a workflow run"),
}
STAGE_COMMANDS = {
    "world": ("star.world.synthesize", "build the synthetic broadcast world (SoccerNet tree)"),
    "manifest": ("star.data.manifest", "write the games manifest (id, split, path) of a config, or a split's list"),
    "decode": ("star.video.decode", "decode one half video to frames at a fixed fps (HDF5)"),
    "encoder-finetune": ("star.features.finetune", "fine-tune the PP-TimesFormer on train-split event labels"),
    "features-extract": ("star.features.extract", "clip features of one half by a video encoder (HDF5)"),
    "features-import": ("star.features.import_npy", "import SoccerNet's precomputed .npy features (HDF5)"),
    "features-probe": ("star.features.probe", "linear probe: do features carry event information?"),
    "positions-localize": ("star.positions.localize", "calibrated player positions of one half (HDF5)"),
    "positions-evaluate": ("star.positions.evaluate", "score positions against Game State ground truth"),
    "spotting-train": ("star.train.spotting", "train a method's spotter (background + caption labels per window)"),
    "spotting-infer": ("star.infer.spots", "spots of each half: sliding window + non-maximum suppression"),
    "captioning-train": ("star.train.captioning", "train a method's captioner on the train split's annotations"),
    "captioning-infer": ("star.infer.captions", "captions of each game at its spots (official predictions JSON)"),
    "plot": ("star.plots", "the report's figures: training curves, spotting confidence, pitch, probe"),
    "diagnostics": ("star.eval.diagnostics", "side, zone and long-range agreement, diversity, spotting confusion"),
}
COMMANDS = {**USER_COMMANDS, **STAGE_COMMANDS}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default unless its help already speaks of it (or there is none to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS)
                or isinstance(action, argparse._VersionAction)):
            return text
        return f"{text} (default: %(default)s)"


def command_list() -> str:
    width = max(map(len, COMMANDS)) + 2
    lines = ["user commands:"] + [f"  {k:<{width}}{v[1]}" for k, v in USER_COMMANDS.items()]
    lines += ["", "pipeline stages (what the workflow's rules run; see `snakemake -n -p`):"]
    lines += [f"  {k:<{width}}{v[1]}" for k, v in STAGE_COMMANDS.items()]
    return "\n".join(lines + ["", "`star <command> --help` describes a command's arguments."])


def split_calls(args: list[str]) -> list[list[str]]:
    """`ARGS --and ARGS ...` -> each call's arguments."""
    calls: list[list[str]] = [[]]
    for arg in args:
        if arg == "--and":
            calls.append([])
        else:
            calls[-1].append(arg)
    return calls


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="star", description=__doc__.splitlines()[0], epilog=command_list(),
                                     formatter_class=HelpFormatter, usage="star [--version] <command> [args ...]")
    parser.add_argument("--version", action="version", version=f"star {__version__}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="command", help="one of the commands below")
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv[:1] or ["--help"])   # --help, --version, or an unknown command's error
    module_name, help_text = COMMANDS[argv[0]]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"star {argv[0]}", description=help_text, formatter_class=HelpFormatter,
                                  epilog=f"star {argv[0]} ARGS --and ARGS ...: several calls in one process")
    module.add_arguments(sub)
    calls = [sub.parse_args(part) for part in split_calls(argv[1:])]
    try:
        for args in calls:
            if code := int(module.run(args) or 0):
                return code
        return 0
    except (InputError, FileNotFoundError) as exc:
        # Bad input: one clear line naming the file and the problem, no traceback.
        print(f"star {argv[0]}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
