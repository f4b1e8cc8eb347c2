"""`star download ROOT`: SoccerNet-Caption labels, features and videos with the SoccerNet package's downloader.

    star download data/SoccerNet --what labels features --features baidu --split train valid test
    star download data/SoccerNet --what videos --videos 224p --split test      # needs the NDA password

Games come from the SoccerNet package's caption split lists (`getListGames(split, task="caption")`); files land in
`ROOT/<league>/<season>/<game>/`. Files already on disk are not fetched again: a split whose files are all present
is skipped without touching the network, and the summary says per file name how many were downloaded, already
present, or still missing. Videos need the password of SoccerNet's NDA: it is read from the environment variable
SOCCERNET_PASSWORD or asked for at the terminal, handed to the downloader in memory, and never written to a file,
a log or an error message.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from star.config import section
from star.errors import InputError
from star import registry

LABELS_FILE = "Labels-caption.json"
FEATURE_KINDS = registry.imported_encoders()  # every SoccerNet feature set of the registry
VIDEO_QUALITIES = ("224p", "720p")
SPLITS = ("train", "valid", "test", "challenge")
PASSWORD_VARIABLE = "SOCCERNET_PASSWORD"
HALVES = registry.dataset("soccernet").halves


class DownloadError(InputError):
    """The SoccerNet package is missing, or its servers could not be reached or refused the request."""


def feature_files(kinds) -> list[str]:
    """Per-half file names of the feature kinds, from features.import.<kind>.file (e.g. 1_ResNET_TF2.npy)."""
    templates = section("features.import")
    return [templates[kind]["file"].format(half=half) for kind in kinds for half in HALVES]


def requested_files(what, kinds, quality) -> list[str]:
    files = []
    if "labels" in what:
        files.append(LABELS_FILE)
    if "features" in what:
        files += feature_files(kinds)
    if "videos" in what:
        files += [f"{half}_{quality}.mkv" for half in HALVES]
    return files


def nda_password() -> str:
    """The NDA password from SOCCERNET_PASSWORD, else a prompt that does not echo."""
    password = os.environ.get(PASSWORD_VARIABLE)
    if not password:
        try:
            password = getpass.getpass("SoccerNet NDA password (for videos): ")
        except EOFError:   # stdin closed or not a terminal (a batch job)
            password = ""
    if not password:
        raise DownloadError(f"videos need the SoccerNet NDA password: set {PASSWORD_VARIABLE} or type it at the prompt")
    return password


def soccernet_package():
    """The downloader class and the caption game lists, imported only when a download runs."""
    try:
        from SoccerNet import Downloader, utils
    except ImportError:
        raise DownloadError("star download needs the SoccerNet package: pip install SoccerNet") from None
    return Downloader.SoccerNetDownloader, utils.getListGames


def present(root: Path, games, files) -> dict[str, int]:
    """How many of the games hold each file."""
    return {file: sum((root / game / file).is_file() for game in games) for file in files}


def network_errors() -> tuple[type[BaseException], ...]:
    """What an unreachable or refusing server raises: OSError covers urllib, requests, Hugging Face's
    LocalEntryNotFoundError and the downloader's PermissionError; newer huggingface_hub uses httpx."""
    try:
        import httpx
    except ImportError:
        return (OSError,)
    return (OSError, httpx.HTTPError)


def describe_failure(exc: BaseException, downloader, password: str | None) -> str:
    """One line naming the servers and what failed, with the password (if any) blanked out."""
    detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if password:
        detail = detail.replace(password, "***")
    servers = "huggingface.co (SoccerNet datasets)"
    if getattr(downloader, "OwnCloudServer", None):
        servers += f" or {downloader.OwnCloudServer}"
    return f"could not download from SoccerNet's servers ({servers}): {detail}. Are you online?"


def download_split(downloader, root: Path, split: str, games, files, password) -> dict[str, tuple[int, int, int]]:
    """Fetch the files of one split's games; per file (downloaded, already present, missing)."""
    before = present(root, games, files)
    wanted = [file for file in files if before[file] < len(games)]
    if wanted:
        print(f"star download: {split}: {len(games)} games, fetching {', '.join(wanted)}", flush=True)
        try:
            downloader.downloadGames(files=wanted, split=[split], task="caption")
        except network_errors() as exc:
            raise DownloadError(f"{split} split, files {', '.join(wanted)}: "
                                f"{describe_failure(exc, downloader, password)}") from None
    after = present(root, games, files)
    return {file: (after[file] - before[file], before[file], len(games) - after[file]) for file in files}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="SoccerNet data root (created if needed)")
    parser.add_argument("--what", nargs="+", choices=["labels", "features", "videos"], default=["labels", "features"],
                        help="what to download (default: labels features; videos need the NDA password)")
    parser.add_argument("--features", nargs="+", choices=FEATURE_KINDS, default=["baidu"],
                        help="feature sets (default: baidu, 8576-d at 1 fps)")
    parser.add_argument("--split", nargs="+", choices=SPLITS, default=["train", "valid", "test"],
                        help="caption splits (default: train valid test; challenge has no public labels)")
    parser.add_argument("--videos", choices=VIDEO_QUALITIES, default="224p", help="video quality (default 224p)")


def run(args: argparse.Namespace) -> int:
    downloader_class, list_games = soccernet_package()
    files = requested_files(args.what, args.features, args.videos)
    password = nda_password() if "videos" in args.what else None
    args.root.mkdir(parents=True, exist_ok=True)
    downloader = downloader_class(str(args.root))
    if password:
        downloader.password = password  # in memory only: the downloader sends it to the server
    missing = 0
    for split in args.split:
        games = list_games(split, task="caption")
        for file, (fetched, had, lacking) in download_split(downloader, args.root, split, games, files,
                                                            password).items():
            print(f"star download: {split}: {file}: {fetched} downloaded, {had} already present, {lacking} missing")
            missing += lacking
    if missing:
        print(f"star download: {missing} files are still missing (not published for those games, or refused)")
    return 0
