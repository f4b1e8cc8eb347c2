"""`star doctor ROOT`: check a SoccerNet data root before a long run, and say what is wrong in which file.

    star doctor data/SoccerNet --split train valid test --features baidu
    star doctor data/SoccerNet --games my_games.txt --video 224p

Games: those of `--games` files (one game path per line) or of the SoccerNet package's caption `--split` lists (a
listed game missing on disk is a problem); without either, every game folder under ROOT holding a labels, feature
or video file. Per game:
- `Labels-caption.json`: present and following the schema (star.data.soccernet.load_labels: gameTime "H - MM:SS"
  with half 1 or 2, caption labels, ...); a `position` more than a second away from its gameTime is a warning.
- videos (`{half}_224p.mkv` / `{half}_720p.mkv`): decoded through as `star decode` does (its own checks: a corrupt
  frame, or frames that stop before the duration the container states, is a problem), which costs what decoding
  costs (docs/reliability.md gives the measured time; `--quick` decodes one frame only). Annotations must lie inside
  their half's video.
- feature files (Baidu 8576-d 1 fps; ResNET 2048-d, C3D 4096-d, I3D 1024-d and their PCA512 512-d, all 2 fps;
  from features.import): the checks of
  `star features-import` (2-D numbers, the dimension, no NaN or inf row), and the frame rate by this rule: with a
  video of the half, rows / fps must match its duration within features.import.<kind>.tolerance_s; without one,
  rows / fps must reach the half's last annotation (fewer rows means fewer rows per second than the kind has), and
  covering more than an hour is a problem (SoccerNet half videos last about 45-50 min: a 2-fps file read at 1 fps
  looks twice as long).
Feature kinds named with `--features` (and the `--video` quality) must be present; otherwise whatever is present is
checked. Problems make the exit code 1; warnings do not. Every feature row is read once (a Baidu half is 90 MB).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from star.config import section
from star.data.download import FEATURE_KINDS, HALVES, LABELS_FILE, VIDEO_QUALITIES
from star.data.soccernet import GameLabels, LabelsError, load_labels, read_game_list, soccernet_split
from star.errors import InputError
from star.features.import_npy import FeaturesFileError, check_layout, finite_chunks, open_npy, video_seconds

CHECK_FPS = 1 / 600   # frames converted while a video is decoded through (one per 10 min: decoding is the cost)


@dataclass
class GameReport:
    game: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self, verbose: bool) -> list[str]:
        status = "PROBLEMS" if self.problems else "warnings" if self.warnings else "ok"
        out = [f"{self.game}: {status}"]
        out += [f"  PROBLEM  {p}" for p in self.problems] + [f"  warning  {w}" for w in self.warnings]
        return out + ([f"  ok       {n}" for n in self.notes] if verbose else [])


def games_to_check(root: Path, game_files, splits) -> list[tuple[str, str]]:
    """(game, where it is listed): from list files, the SoccerNet package's splits, or what is on disk."""
    if game_files:
        return [(game, str(path)) for path in game_files for game in read_game_list(path)]
    if splits:
        try:
            return [(game, f"SoccerNet's {split} split") for split in splits for game in soccernet_split(split)]
        except RuntimeError as exc:
            raise InputError(str(exc)) from None
    known = {LABELS_FILE, *(f"{half}_{q}.mkv" for half in HALVES for q in VIDEO_QUALITIES)}
    known |= {spec["file"].format(half=half) for spec in section("features.import").values() for half in HALVES}
    folders = sorted({path.parent for path in root.rglob("*") if path.name in known and path.is_file()})
    return [(folder.relative_to(root).as_posix(), "found on disk") for folder in folders]


def check_labels(path: Path, report: GameReport) -> GameLabels | None:
    if not path.is_file():
        report.problems.append(f"{path}: labels file is missing")
        return None
    try:
        labels = load_labels(path)
    except LabelsError as exc:
        report.problems.append(str(exc))
        return None
    for i, ann in enumerate(labels.annotations):
        if abs(ann.position_ms / 1000 - ann.seconds) > 1:
            report.warnings.append(f"{path}: annotation {i}: position {ann.position_ms} ms is not its gameTime "
                                   f"{ann.half} - {ann.seconds // 60:02d}:{ann.seconds % 60:02d}")
    counts = ", ".join(f"half {h}: {len(labels.half(h))}" for h in HALVES)
    report.notes.append(f"{path.name}: {len(labels.annotations)} annotations ({counts})")
    return labels


def probe_video(path: Path, quick: bool = False) -> float:
    """Duration (s) from the container, after decoding the whole video as `star decode` does (so a truncated or
    corrupt video fails here with decode's own error), or only its first frame with `quick`."""
    import av

    from star.video.decode import iter_frames

    duration = video_seconds(path)
    try:
        if quick:
            with av.open(str(path)) as container:
                next(container.decode(video=0))
        else:
            for _ in iter_frames(path, CHECK_FPS):
                pass
    except (av.error.FFmpegError, OSError, StopIteration) as exc:
        raise InputError(f"{path}: no decodable video frame ({exc!r})") from None
    return duration


def check_videos(folder: Path, half: int, qualities, required: bool, report: GameReport,
                 quick: bool = False) -> float | None:
    """The half's duration from the first readable video among `qualities`."""
    duration = None
    for quality in qualities:
        path = folder / f"{half}_{quality}.mkv"
        if not path.is_file():
            if required:
                report.problems.append(f"{path}: video is missing")
            continue
        try:
            seconds = probe_video(path, quick)
        except InputError as exc:
            report.problems.append(str(exc))
            continue
        report.notes.append(f"{path.name}: {seconds:.1f} s")
        duration = seconds if duration is None else duration
    return duration


def check_features(folder: Path, half: int, kind: str, required: bool, duration: float | None,
                   last_annotation: int | None, report: GameReport) -> None:
    spec = section("features.import")[kind]
    path = folder / spec["file"].format(half=half)
    if not path.is_file():
        if required:
            report.problems.append(f"{path}: {kind} features are missing")
        return
    try:
        array = open_npy(path)
        check_layout(path, array, spec, kind, duration, last_annotation, half)
        for _ in finite_chunks(path, array):
            pass
    except FeaturesFileError as exc:
        report.problems.append(str(exc))
        return
    rows, fps = len(array), spec["fps"]
    covered = rows / fps
    report.notes.append(f"{path.name}: {rows} rows x {array.shape[1]} at {fps:g} fps = {covered:.0f} s")


def check_annotations_inside(labels: GameLabels, half: int, duration: float, report: GameReport) -> None:
    late = [a for a in labels.half(half) if a.seconds > duration]
    if late:
        report.problems.append(
            f"{labels.path}: {len(late)} annotation(s) of half {half} lie beyond its video's {duration:.0f} s, the "
            f"first at {half} - {late[0].seconds // 60:02d}:{late[0].seconds % 60:02d}")


def check_game(root: Path, game: str, listed_in: str, args) -> GameReport:
    report = GameReport(game)
    folder = root / game
    if not folder.is_dir():
        report.problems.append(f"{folder}: listed in {listed_in} but missing on disk")
        return report
    labels = check_labels(folder / LABELS_FILE, report)
    qualities = [args.video] if args.video else VIDEO_QUALITIES
    kinds = args.features or FEATURE_KINDS
    for half in HALVES:
        duration = check_videos(folder, half, qualities, bool(args.video), report, args.quick)
        times = [a.seconds for a in labels.half(half)] if labels else []
        if labels and duration is not None:
            check_annotations_inside(labels, half, duration, report)
        for kind in kinds:
            check_features(folder, half, kind, bool(args.features), duration, max(times, default=None), report)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="SoccerNet data root (<league>/<season>/<game>/)")
    games = parser.add_mutually_exclusive_group()
    games.add_argument("--games", nargs="+", type=Path, help="game list files (one game path per line)")
    games.add_argument("--split", nargs="+", choices=["train", "valid", "test", "challenge"],
                       help="the SoccerNet package's caption splits")
    parser.add_argument("--features", nargs="+", choices=FEATURE_KINDS,
                        help="feature kinds that must be present (default: check whichever are)")
    parser.add_argument("--video", choices=VIDEO_QUALITIES, help="video quality that must be present")
    parser.add_argument("--quick", action="store_true",
                        help="decode one frame per video instead of all (misses truncated and corrupt videos)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list what is fine")


def run(args: argparse.Namespace) -> int:
    if not args.root.is_dir():
        raise InputError(f"{args.root}: data root does not exist")
    games = games_to_check(args.root, args.games, args.split)
    if not games:
        raise InputError(f"{args.root}: no game folder found (no labels, feature or video file below it)")
    reports = [check_game(args.root, game, listed_in, args)
               for game, listed_in in tqdm(games, desc="star doctor", unit="game", disable=len(games) < 10)]
    for report in reports:
        print("\n".join(report.lines(args.verbose)))
    problems = sum(len(r.problems) for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    print(f"star doctor: {len(reports)} games, {problems} problems, {warnings} warnings")
    return 1 if problems else 0
