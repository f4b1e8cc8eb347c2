"""Backend `sngamestate`: run sn-gamestate (tracklab) on a half video in its own environment, read its Game State
JSON (backend `gamestate_json`).

sn-gamestate needs Python 3.9, torch 1.13 and GitHub-only packages (FACTS §6), so it runs only as a subprocess
of the interpreter `positions.sngamestate.python`, from its checkout `positions.sngamestate.repo`; it is never
imported here. One run:

1. check that every file in `positions.sngamestate.weights` exists (relative paths are looked for in the repo),
   listing all missing ones in one error before anything starts;
2. stage the video as a one-sequence SoccerNet-GS split: frames at `positions.fps` as
   `<work>/SoccerNetGS/challenge/SNGS-0001/img1/000001.jpg, ...` with no labels file, so tracklab numbers image k
   (from 0) as `1 * 10000 + k` and writes predictions as it does for the challenge set;
3. run `python -m tracklab.main -cn <config_name> dataset.dataset_path=... dataset.eval_set=challenge
   dataset.nvid=1 hydra.run.dir=<work>/run ...` (+ `extra_args`) in the repo, its output in `<work>/tracklab.log`;
4. read `<work>/run/**/SNGS-0001.json` (`{"predictions": [...]}`), image ids back to frames.

Setup on a GPU machine (once):

    conda env create -f envs/gamestate.yaml -n gamestate       # Python 3.9, torch 1.13 + CUDA
    git clone https://github.com/SoccerNet/sn-gamestate && pip install -e sn-gamestate   # in that env
    mim install mmcv==2.0.1                                     # the jersey-number OCR stage
    python -m tracklab.main -cn soccernet ...                   # first run downloads the weights into the repo

then set `positions.backend: sngamestate`, `positions.sngamestate.python` to the env's interpreter (e.g.
`~/miniconda3/envs/gamestate/bin/python`), `repo` to the checkout, and `weights` to the downloaded files (e.g.
`pretrained_models/yolo/yolov8x6.pt`, the PRTReid and calibration checkpoints) so a missing one fails early.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image

from star.errors import InputError
from star.positions.gamestate_json import read_gamestate, resample
from star.positions.backends import HalfSource, Localizer, Positions

SEQUENCE = "SNGS-0001"          # the staged video's sequence name
VIDEO_ID = 1                    # tracklab's id of that sequence (from its name)
SPLIT = "challenge"             # a split without labels: tracklab predicts and saves, and skips scoring


class SnGameStateError(InputError):
    """sn-gamestate cannot be run as configured, or gave no usable output."""


def missing_weights(weights: list[str], repo: Path) -> list[Path]:
    paths = [Path(w) if Path(w).is_absolute() else repo / w for w in weights]
    return [p for p in paths if not p.is_file()]


def stage_frames(video: Path, fps: float, work: Path) -> tuple[Path, int]:
    """Write the video's frames at `fps` as a SoccerNet-GS sequence; returns the dataset root and the count."""
    from star.video.decode import iter_frames

    root = work / "SoccerNetGS"
    images = root / SPLIT / SEQUENCE / "img1"
    if root.exists():
        shutil.rmtree(root)
    images.mkdir(parents=True)
    count = 0
    for count, (_, frame) in enumerate(iter_frames(video, fps), start=1):
        Image.fromarray(frame).save(images / f"{count:06d}.jpg", quality=95)
    return root, count


def tracklab_command(settings: dict, dataset: Path, run_dir: Path) -> list[str]:
    """The tracklab command line: one staged sequence, output in `run_dir`, no video rendering."""
    return [
        str(settings["python"]), "-m", "tracklab.main", "-cn", settings["config_name"],
        f"dataset.dataset_path={dataset}", f"dataset.eval_set={SPLIT}", "dataset.nvid=1",
        f"dataset.vids_dict.{SPLIT}=[{SEQUENCE}]", f"hydra.run.dir={run_dir}",
        "visualization.cfg.save_videos=False", "state.save_file=null", "use_wandb=False",
        *settings["extra_args"],
    ]


def frame_of(image_id) -> int:
    """tracklab's image id of a staged frame -> its index from 0."""
    return int(image_id) - VIDEO_ID * 10_000


class SnGameStateLocalizer(Localizer):
    def __init__(self, config: dict):
        super().__init__(config)
        self.settings = config["sngamestate"]

    def check(self, source: HalfSource) -> tuple[Path, Path]:
        """The repo and video, after every check that can fail before launching."""
        settings = self.settings
        for key in ("python", "repo"):
            if not settings[key]:
                raise SnGameStateError(f"positions.sngamestate.{key} is not set (see star/positions/sngamestate.py "
                                       f"for the setup)")
        repo = Path(settings["repo"]).expanduser()
        if not Path(settings["python"]).expanduser().is_file():
            raise SnGameStateError(f"positions.sngamestate.python: interpreter {settings['python']} does not exist")
        if not repo.is_dir():
            raise SnGameStateError(f"positions.sngamestate.repo: {repo} is not a directory")
        missing = missing_weights(settings["weights"], repo)
        if missing:
            raise SnGameStateError(f"sn-gamestate weights missing (relative paths are looked for in {repo}): "
                                   + ", ".join(str(p) for p in missing))
        if source.video is None or not Path(source.video).is_file():
            raise SnGameStateError(f"the sngamestate backend needs the half video (--video); got {source.video}")
        if source.work_dir is None:
            raise SnGameStateError("the sngamestate backend needs a work folder (--work)")
        return repo, Path(source.video)

    def localize(self, source: HalfSource) -> Positions:
        repo, video = self.check(source)
        work = Path(source.work_dir)
        dataset, count = stage_frames(video, self.fps, work)
        run_dir = work / "run"
        log = work / "tracklab.log"
        command = tracklab_command(self.settings, dataset, run_dir)
        with open(log, "w") as out:
            try:
                done = subprocess.run(command, cwd=repo, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=self.settings["timeout_s"], check=False)
            except subprocess.TimeoutExpired:
                raise SnGameStateError(f"tracklab ran longer than {self.settings['timeout_s']} s; log: {log}") from None
        if done.returncode != 0:
            raise SnGameStateError(f"tracklab failed (exit {done.returncode}) on {video}; log: {log}")
        found = sorted(run_dir.rglob(f"{SEQUENCE}.json"))
        if not found:
            raise SnGameStateError(f"tracklab wrote no {SEQUENCE}.json under {run_dir}; log: {log}")
        frames = read_gamestate(found[0], frame_of=frame_of)
        return resample(frames, self.fps, self.fps, self.max_players, source.length or count)

    def sources(self, source: HalfSource) -> list[Path]:
        return [Path(source.video)] if source.video else []
