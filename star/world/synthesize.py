"""`star world`: build the synthetic broadcast world as a real SoccerNet tree.

For each planned game (star.world.plan): simulate the match, write its commentary, render both halves, and write
into `<root>/<game path>/`:

  Labels-caption.json        SoccerNet-Caption labels (FACTS §1), readable by star.data.soccernet.load_labels
  {half}_Labels-GameState.json   per-half ground truth at 1 fps in the SoccerNet Game State format
  {half}_camera.json         the true main camera per video frame (null during cuts)
  the videos                 `video_name` with {half} replaced by 1 and 2
  .world-stamp.json          seed, config and code hash the game was built with (a rerun skips matching games)

and `<root>/splits/{train,valid,test}.txt` (one game path per line). Every file is written atomically.

Game State ground truth: `images` holds one image per second of video (`file_name` "000001.jpg" is second 0;
`image_id` = half, game index (3 digits), frame counted from 1 (6 digits), as in SoccerNet GSR), with
`has_labeled_camera` false during cuts. `annotations` lists every person on the pitch in every image:
`bbox_pitch` is the true position (x_bottom_middle, y_bottom_middle, metres, SoccerNet's pitch frame; the left and
right corners 0.25 m either side along the camera's horizontal axis), `attributes.team` is the side the team
defends in that half. The flag `visible` says whether the person's figure is in the main camera's picture;
`bbox_image` (pixels, a 1.8 m tall and 0.5 m wide figure standing on its position) is present only then. The ball
is one more entry per image (category `ball`, `track_id` one past the people's), `bbox_pitch` its ground point
(the point under it when in the air), visible when its centre is in the picture.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from star.config import ConfigError, load, to_json, validate
from star.data.soccernet import format_game_time
from star.errors import InputError
from star.provenance import code_hash, write_text_atomic
from star.geometry.camera import Camera
from star.world.commentary import commentate
from star.world.match import HalfTrack, Match
from star.world.plan import PlannedGame, plan_games
from star.world.drawing import NEAR, PERSON_HEIGHT
from star.world.render import render_half
from star.world.simulate import simulate_match

LABELS = "Labels-caption.json"
STAMP = ".world-stamp.json"
GAMESTATE_FPS = 1
FIGURE_WIDTH = 0.5            # m, the rendered shirt width
CATEGORIES = ({"supercategory": "object", "id": 1, "name": "player"},
              {"supercategory": "object", "id": 2, "name": "goalkeeper"},
              {"supercategory": "object", "id": 3, "name": "referee"},
              {"supercategory": "object", "id": 4, "name": "ball"})
CATEGORY_ID = {c["name"]: c["id"] for c in CATEGORIES}
PITCH_KEYS = ("x_bottom_left", "y_bottom_left", "x_bottom_right", "y_bottom_right", "x_bottom_middle",
              "y_bottom_middle")
IMAGE_KEYS = ("x", "y", "x_center", "y_center", "w", "h")


def game_files(game_dir: Path, video_name: str) -> list[Path]:
    """Every file a game folder gets (the stamp excluded)."""
    per_half = [name.format(half=h) for h in (1, 2)
                for name in (video_name, "{half}_Labels-GameState.json", "{half}_camera.json")]
    return [game_dir / LABELS, *(game_dir / name for name in per_half)]


# ---------------------------------------------------------------- Labels-caption.json

def _lineup(match: Match, team: int) -> dict:
    squad = match.squad(team)
    captain = next(p.id for p in squad if p.starter and p.role == "player")
    players = [{"long_name": p.name, "short_name": f"{p.name[0]}. {p.name.split()[-1]}", "shirt_number": p.shirt,
                "captain": p.id == captain, "starting": p.starter, "role": p.role, "id": p.id} for p in squad]
    coach = match.coaches[team]
    return {"players": players, "coach": [{"long_name": coach, "short_name": f"{coach[0]}. {coach.split()[-1]}"}]}


def labels_json(match: Match, planned: PlannedGame) -> dict:
    """The game's Labels-caption.json content, annotations in half and time order (no creation time, so the
    same seed gives the same file)."""
    when = dt.datetime.strptime(planned.kickoff, "%Y-%m-%d - %H-%M").replace(tzinfo=dt.timezone.utc)
    referee = next(p.name for p in match.people if p.role == "referee")
    annotations = []
    for track in match.halves:
        for ev in track.events:
            if ev.label is None:
                continue
            annotations.append({
                "gameTime": format_game_time(track.half, ev.time),
                "label": ev.label, "position": str(int(ev.time * 1000)), "visibility": ev.visibility,
                "important": ev.important, "description": ev.identified, "identified": ev.identified,
                "anonymized": ev.anonymized, "recalls": ev.recalls,
            })
    score = f"{match.score[0]} - {match.score[1]}"
    return {
        "UrlLocal": planned.path + "/", "UrlYoutube": "",
        "gameHomeTeam": match.teams[0], "gameAwayTeam": match.teams[1], "gameScore": score, "score": score,
        "gameDate": when.strftime("%d/%m/%Y - %H:%M"), "round": str(planned.index + 1),
        "timestamp": int(when.timestamp()), "venue": [f"{match.teams[0]} Stadium"], "referee": [referee],
        "lineup": {"home": _lineup(match, 0), "away": _lineup(match, 1)},
        "annotations": annotations,
    }


# ---------------------------------------------------------------- Game State ground truth

def _figure_boxes(camera: Camera, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image boxes [n, 4] (x0, y0, x1, y1, clipped to the picture) of upright figures at xy [n, 2], and whether
    each is in the picture."""
    feet = np.column_stack([xy, np.zeros(len(xy))])
    uv, depth = camera.project(np.concatenate([feet, feet - [0, 0, PERSON_HEIGHT]]))
    n = len(xy)
    foot, head_v = uv[:n], uv[n:, 1]
    half_width = 0.5 * FIGURE_WIDTH * (foot[:, 1] - head_v) / PERSON_HEIGHT
    box = np.column_stack([foot[:, 0] - half_width, head_v, foot[:, 0] + half_width, foot[:, 1]])
    clipped = np.clip(box, 0, [camera.width, camera.height, camera.width, camera.height])
    seen = (depth[:n] > NEAR) & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped, seen


def _ball_entry(image_id: str, track_id: int, ball: np.ndarray, camera: Camera | None) -> dict:
    """The ball's Game State entry: ball [3] = x, y, height above ground (m)."""
    seen = False
    if camera is not None:
        (u, v), depth = (a[0] for a in camera.project(np.array([[ball[0], ball[1], -ball[2]]])))
        seen = bool(depth > NEAR and 0 <= u <= camera.width and 0 <= v <= camera.height)
    x, y = round(float(ball[0]), 3), round(float(ball[1]), 3)
    return {"id": f"{image_id}99", "image_id": image_id, "track_id": track_id, "supercategory": "object",
            "category_id": CATEGORY_ID["ball"], "attributes": {"role": "ball", "jersey": None, "team": None},
            "bbox_pitch": dict(zip(PITCH_KEYS, (x, y, x, y, x, y), strict=True)), "visible": seen}


def gamestate_json(match: Match, track: HalfTrack, cameras: list[dict | None], world: dict, planned: PlannedGame,
                   video: str) -> dict:
    """Per-half Game State ground truth at 1 fps (see the module docstring)."""
    width, height, fps = world["width"], world["height"], world["video_fps"]
    seconds = int(np.ceil(track.duration * GAMESTATE_FPS - 1e-9))
    images, annotations = [], []
    for k in range(seconds):
        image_id = f"{track.half}{planned.index % 1000:03d}{k + 1:06d}"
        frame = min(round(k / GAMESTATE_FPS * fps), len(cameras) - 1)
        cam = cameras[frame]
        images.append({"is_labeled": True, "image_id": image_id, "file_name": f"{k + 1:06d}.jpg", "height": height,
                       "width": width, "has_labeled_person": True, "has_labeled_pitch": False,
                       "has_labeled_camera": cam is not None, "ignore_regions_y": [], "ignore_regions_x": []})
        xy = track.xy[track.sample(k / GAMESTATE_FPS)].astype(float)            # [people, 2]
        present = np.flatnonzero(~np.isnan(xy[:, 0]))
        camera = Camera(**cam) if cam is not None else None
        boxes, seen = _figure_boxes(camera, xy[present]) if camera else (np.zeros((len(present), 4)),
                                                                         np.zeros(len(present), bool))
        along = camera.rotation()[0, :2] if camera else np.array([1.0, 0.0])  # image-right on the ground
        half_width = 0.5 * FIGURE_WIDTH * along / np.linalg.norm(along)
        feet = xy[present]                                                      # [n, 2]
        # rounded in numpy, then plain floats: builtin round() on numpy scalars is slow
        ground = np.round(np.concatenate([feet - half_width, feet + half_width, feet], axis=1), 3).tolist()
        x0, y0, x1, y1 = boxes.T
        pixels = np.round(np.column_stack([x0, y0, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]), 2).tolist()
        for slot, p in enumerate(present.tolist()):
            person = match.people[p]
            team = None if person.team < 0 else ("left" if person.team == track.left_team else "right")
            entry = {
                "id": f"{image_id}{slot:02d}", "image_id": image_id, "track_id": p + 1, "supercategory": "object",
                "category_id": CATEGORY_ID[person.role],
                "attributes": {"role": person.role, "jersey": str(person.shirt) if person.team >= 0 else None,
                               "team": team},
                "bbox_pitch": dict(zip(PITCH_KEYS, ground[slot], strict=True)),
                "visible": bool(seen[slot]),
            }
            if seen[slot]:
                entry["bbox_image"] = dict(zip(IMAGE_KEYS, pixels[slot], strict=True))
            annotations.append(entry)
        ball = track.ball[track.sample(k / GAMESTATE_FPS)].astype(float)         # x, y, height (m)
        if not np.isnan(ball).any():
            annotations.append(_ball_entry(image_id, len(match.people) + 1, ball, camera))
    info = {"version": "1.3", "game_id": planned.index, "name": planned.path, "half": track.half, "video": video,
            "video_fps": fps, "frame_rate": GAMESTATE_FPS, "seq_length": seconds, "im_dir": "img1", "im_ext": ".jpg",
            "left_team": match.teams[track.left_team], "right_team": match.teams[1 - track.left_team]}
    return {"info": info, "images": images, "annotations": annotations, "categories": list(CATEGORIES)}


def camera_json(cameras: list[dict | None], world: dict) -> dict:
    return {"fps": world["video_fps"], "width": world["width"], "height": world["height"], "frames": cameras}


# ---------------------------------------------------------------- building games

def _write_json(path: Path, value: dict) -> None:
    write_text_atomic(path, json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def stamp(world: dict, seed: int, planned: PlannedGame, video_name: str) -> dict:
    """What a game folder was built from; a rerun with the same stamp skips the game."""
    return {"seed": seed, "game_seed": planned.seed, "world": json.loads(to_json(world)), "video": video_name,
            "code": code_hash("star.world.synthesize")}


def is_built(game_dir: Path, expected: dict, video_name: str) -> bool:
    try:
        stored = json.loads((game_dir / STAMP).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return stored == expected and all(p.is_file() for p in game_files(game_dir, video_name))


def build_game(world: dict, seed: int, planned: PlannedGame, root: Path, video_name: str) -> str:
    """Simulate, commentate, render and write one game; returns its path."""
    match = simulate_match(planned, world)
    commentate(match, planned.seed)
    game_dir = Path(root) / planned.path
    for track in match.halves:
        video = video_name.format(half=track.half)
        cameras = render_half(match, track, game_dir / video, world, planned.seed)
        _write_json(game_dir / f"{track.half}_camera.json", camera_json(cameras, world))
        _write_json(game_dir / f"{track.half}_Labels-GameState.json",
                    gamestate_json(match, track, cameras, world, planned, video))
    write_text_atomic(game_dir / LABELS, json.dumps(labels_json(match, planned), ensure_ascii=False, indent=1))
    _write_json(game_dir / STAMP, stamp(world, seed, planned, video_name))
    return planned.path


def write_splits(games: list[PlannedGame], root: Path) -> None:
    for split in ("train", "valid", "test"):
        paths = [g.path for g in games if g.split == split]
        write_text_atomic(Path(root) / "splits" / f"{split}.txt", "".join(p + "\n" for p in paths))


def synthesize(world: dict, seed: int, root: Path, video_name: str = "{half}_224p.mkv",
               only: list[str] | None = None, workers: int = 1) -> list[str]:
    """Build the games of the world (or those in `only`) under `root`; returns the paths built this time.

    Games whose outputs exist and whose stamp matches are skipped, so a rerun after a crash resumes."""
    if "{half}" not in video_name:
        raise InputError(f"video name {video_name!r} must contain {{half}} (one video per half)")
    games = plan_games(world, seed)
    write_splits(games, root)
    if only:
        unknown = sorted(set(only) - {g.path for g in games})
        if unknown:
            raise InputError(f"--only names games the world (seed {seed}) does not plan: {unknown}")
        games = [g for g in games if g.path in only]
    todo = [g for g in games
            if not is_built(Path(root) / g.path, stamp(world, seed, g, video_name), video_name)]
    built = []
    with tqdm(total=len(todo), desc="world", unit="game") as bar:
        if workers <= 1:
            for g in todo:
                built.append(build_game(world, seed, g, root, video_name))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(build_game, world, seed, g, root, video_name) for g in todo]
                for future in as_completed(futures):
                    built.append(future.result())
                    bar.update()
    return sorted(built)


# ---------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    parser.add_argument("--config", default=None,
                        help="full config as inline JSON or a YAML path (uses seed, world, dataset.video)")
    parser.add_argument("--root", required=True, type=Path, help="root of the SoccerNet tree to write")
    parser.add_argument("--only", nargs="+", metavar="GAMEPATH", help="build only these games (paths under root)")
    parser.add_argument("--workers", type=int, default=1, help="games rendered in parallel processes")
    parser.add_argument("--splits-only", action="store_true", help="write only <root>/splits/*.txt")


def load_config(value: str | None) -> dict:
    """The full config from inline JSON (what the workflow passes), a YAML path, or None (defaults)."""
    if value is None:
        return validate({}, where="the defaults")
    if value.lstrip().startswith("{"):
        try:
            return validate(json.loads(value), where="--config")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config is not valid JSON: {exc}") from None
    return load(value)


def run(args) -> int:
    config = load_config(args.config)
    world, seed = config["world"], config["seed"]
    if args.splits_only:
        write_splits(plan_games(world, seed), args.root)
        return 0
    built = synthesize(world, seed, args.root, config["dataset"]["video"], args.only, args.workers)
    print(f"built {len(built)} game(s) under {args.root}")
    return 0
