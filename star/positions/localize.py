"""`star positions-localize`: calibrated player positions of one game half, written as a positions cache.

The backend is `positions.backend` (classical | gamestate_json | sngamestate, see star/positions/backends.py).
Every backend writes the same cache (star/data/cache.py, kind "positions") at `positions.fps`. With --frames, the
cache spans the frames cache's timeline (so positions line up with the features); otherwise a JSON backend takes
its own extent.

    star positions-localize --game ID --half 1 --out positions.h5 --frames frames.h5 [--config CFG]
    star positions-localize --game ID --half 1 --out positions.h5 --game-dir GAME --config '{"backend": ...}'
    star positions-localize --game ID --half 1 --out positions.h5 --video 1_224p.mkv --work TMP --config ...

Rules hash the code with `code_hash(*code_modules(backend))`: the backend is imported by name at run time, so the
import graph alone does not reach it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from star import registry
from star.config import section
from star.data.cache import POSITIONS_FORMAT, open_cache, write_cache
from star.positions.backends import BACKENDS, HalfSource, get_localizer, samples_spanned
from star.provenance import code_hash, record


def code_modules(backend: str) -> tuple[str, str]:
    return __name__, BACKENDS[backend].split(":")[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--game", required=True, help="game id stored in the cache")
    parser.add_argument("--half", required=True, type=int, choices=registry.halves(), help="half")
    parser.add_argument("--out", required=True, help="positions cache to write (HDF5)")
    parser.add_argument("--config", help="positions section: inline JSON or a YAML file")
    parser.add_argument("--frames", help="frames cache of the half (classical; sets the timeline for all)")
    parser.add_argument("--game-dir", help="game folder holding the Game State JSON (gamestate_json)")
    parser.add_argument("--video", help="half video (sngamestate)")
    parser.add_argument("--work", help="scratch folder (sngamestate stages frames and runs tracklab there)")


def localize_half(config: dict, out: str | Path, game: str, half: int, frames=None, game_dir=None, video=None,
                  work=None) -> None:
    """Write the positions cache `out` of one half with the backend of `config` (the validated positions
    section); each backend reads the inputs it needs of frames, game_dir, video and work."""
    length = None
    if frames:
        with open_cache(frames, "frames") as h5:
            length = samples_spanned(len(h5["frames"]), float(h5.attrs["fps"]), config["fps"])
    as_path = lambda p: Path(p) if p else None
    source = HalfSource(game=game, half=half, frames=as_path(frames), game_dir=as_path(game_dir),
                        video=as_path(video), work_dir=as_path(work), length=length)
    localizer = get_localizer(config)
    started = time.process_time()
    positions = localizer.localize(source)
    cpu_ms = 1000 * (time.process_time() - started) / max(len(positions), 1)
    provenance = record("positions_localize", config, code_hash(*code_modules(config["backend"])),
                        sources=localizer.sources(source))
    write_cache(out, "positions", positions.arrays(), provenance, game=game, half=half,
                fps=float(config["fps"]), backend=config["backend"], max_players=config["max_players"],
                format=POSITIONS_FORMAT)
    print(f"{out}: {len(positions)} samples, {int(positions.calibrated.sum())} calibrated, "
          f"{int(positions.mask.sum())} people; {cpu_ms:.1f} ms CPU per sample")


def run(args: argparse.Namespace) -> int:
    localize_half(section("positions", args.config), args.out, args.game, args.half, args.frames, args.game_dir,
                  args.video, args.work)
    return 0
