"""Backend `gamestate_json`: read SoccerNet Game State JSON and resample it to the positions rate.

Two layouts are read (FACTS §6):
- predictions (sn-gamestate / tracklab output): `{"predictions": [{image_id, track_id, attributes {role, team,
  jersey}, bbox_pitch {x_bottom_middle, y_bottom_middle, ...}, ...}]}`; entries of supercategory `pitch` or
  `camera` only say the frame was calibrated;
- labels (`Labels-GameState.json`, what the synthetic world writes as ground truth): `info`, `images` [{image_id,
  file_name, ...}], `annotations` [the same person entries].

Frame index of an image (at `gamestate_json.fps`): with an `images` list, the number in its file name minus one
("000001.jpg" is frame 0), else its position in the list; without one (predictions), `frame_from_image_id`.
A sample at time k / fps takes the source frame nearest to that time; it is calibrated when that frame is listed
(labels, and `has_labeled_camera` is not false) or carries any entry (predictions). People keep their team side,
role and jersey number (`attributes.jersey`, -1 when null or not a number); the ball (role or category `ball`) is
kept as the sample's ball (the most confident one when a frame lists several). Entries flagged `"visible": false`
are dropped (the synthetic world's ground truth lists everyone on the pitch and flags those outside the main
camera's picture; a real Labels-GameState.json lists only what is in the picture).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from star.data.jsonio import read_json_object
from star.errors import InputError
from star.positions.backends import ROLE_INDEX, Detections, HalfSource, Localizer, Positions, samples_spanned

TEAM_INDEX = {"left": 0, "right": 1, None: -1}
CATEGORY_ROLE = {1: "player", 2: "goalkeeper", 3: "referee", 4: "ball"}   # SoccerNet GSR category ids


class GameStateError(InputError):
    """A Game State JSON file that is missing or does not follow the format."""


@dataclass
class GameStateFrames:
    """People per source frame, and which source frames were seen calibrated."""

    people: dict[int, list[tuple[float, float, int, int, int]]]   # frame -> [(x, y, team, role, jersey)]
    calibrated: set[int]
    last_frame: int                                          # -1 when the file lists no frame
    balls: dict[int, tuple[float, float, float]] = field(default_factory=dict)   # frame -> (x, y, confidence)


def frame_from_image_id(image_id) -> int:
    """SoccerNet GSR ids ("1060000001": 1, video 060, frame 000001 counted from 1) -> frame 0; any smaller
    integer id is taken as a frame index counted from 0."""
    value = int(image_id)
    return value % 1_000_000 - 1 if value >= 1_000_000_000 else value


def _load(path: Path) -> dict:
    return read_json_object(path, GameStateError, "Game State JSON")


def _image_frames(path: Path, images) -> tuple[dict[str, int], set[int]]:
    """image_id -> frame index for a labels file's `images`, and the frames that have a camera."""
    if not isinstance(images, list):
        raise GameStateError(f"{path}: 'images' is not a list")
    frames, calibrated = {}, set()
    for i, image in enumerate(images):
        if not isinstance(image, dict) or "image_id" not in image:
            raise GameStateError(f"{path}: images[{i}] lacks 'image_id'")
        digits = re.findall(r"\d+", Path(str(image.get("file_name", ""))).stem)
        frame = int(digits[-1]) - 1 if digits else i
        frames[str(image["image_id"])] = frame
        if image.get("has_labeled_camera", True) is not False:
            calibrated.add(frame)
    return frames, calibrated


def _jersey(value) -> int:
    """A jersey attribute ("10", 10, null) as a number, -1 when unknown."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return -1
    return number if 0 <= number <= 127 else -1


def _ground(path: Path, where: str, entry: dict) -> tuple[float, float]:
    pitch = entry.get("bbox_pitch")
    if not isinstance(pitch, dict):
        raise GameStateError(f"{path}: {where}: lacks 'bbox_pitch'")
    try:
        x, y = float(pitch["x_bottom_middle"]), float(pitch["y_bottom_middle"])
    except (KeyError, TypeError, ValueError):
        raise GameStateError(f"{path}: {where}: bbox_pitch needs numeric x_bottom_middle and y_bottom_middle") \
            from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise GameStateError(f"{path}: {where}: bbox_pitch position is not finite")
    return x, y


def _entry(path: Path, where: str, entry: dict) -> tuple[str, tuple]:
    """("ball", (x, y, confidence)) or ("person", (x, y, team, role, jersey)) of one entry. Raises on a malformed
    entry."""
    attributes = entry.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise GameStateError(f"{path}: {where}: 'attributes' is not an object")
    role = attributes.get("role") or CATEGORY_ROLE.get(entry.get("category_id"))
    if role == "ball":
        confidence = entry.get("confidence", 1.0)
        return "ball", (*_ground(path, where, entry), float(confidence) if confidence is not None else 1.0)
    if role not in ROLE_INDEX:
        raise GameStateError(f"{path}: {where}: role {role!r} is not one of {sorted(ROLE_INDEX)} or 'ball'")
    team = attributes.get("team")
    if team not in TEAM_INDEX:
        raise GameStateError(f"{path}: {where}: team {team!r} is not 'left', 'right' or null")
    return "person", (*_ground(path, where, entry), TEAM_INDEX[team], ROLE_INDEX[role],
                      _jersey(attributes.get("jersey")))


def read_gamestate(path: str | Path, frame_of: Callable[[object], int] = frame_from_image_id) -> GameStateFrames:
    """Parse either layout; errors name the file and the entry. `frame_of` maps a predictions image_id to a
    frame index (labels files use their `images` list)."""
    path = Path(path)
    data = _load(path)
    if isinstance(data.get("predictions"), list):
        entries, key, image_frames, calibrated = data["predictions"], "predictions", None, set()
    elif isinstance(data.get("annotations"), list) and "images" in data:
        entries, key = data["annotations"], "annotations"
        image_frames, calibrated = _image_frames(path, data["images"])
    else:
        raise GameStateError(f"{path}: expected a 'predictions' list, or 'images' and an 'annotations' list")
    people, balls = defaultdict(list), {}
    for i, entry in enumerate(entries):
        where = f"{key}[{i}]"
        if not isinstance(entry, dict) or "image_id" not in entry:
            raise GameStateError(f"{path}: {where} lacks 'image_id'")
        if image_frames is None:
            try:
                frame = frame_of(entry["image_id"])
            except (TypeError, ValueError):
                raise GameStateError(f"{path}: {where}: image_id {entry['image_id']!r} is not a frame id") from None
            calibrated.add(frame)
        else:
            frame = image_frames.get(str(entry["image_id"]))
            if frame is None:
                raise GameStateError(f"{path}: {where}: image_id {entry['image_id']!r} is not in 'images'")
        if entry.get("supercategory", "object") != "object" or entry.get("visible") is False:
            continue   # pitch lines or camera parameters of a calibrated frame; a person out of the picture
        what, values = _entry(path, where, entry)
        if what == "person":
            people[frame].append(values)
        elif frame not in balls or values[2] > balls[frame][2]:
            balls[frame] = values
    listed = set(image_frames.values()) if image_frames is not None else calibrated
    return GameStateFrames(dict(people), calibrated, max(listed | set(people) | set(balls), default=-1), balls)


def resample(frames: GameStateFrames, source_fps: float, fps: float, max_players: int,
             length: int | None = None) -> Positions:
    """Positions at `fps`: sample k takes the source frame nearest to time k / fps."""
    if length is None:
        length = samples_spanned(frames.last_frame + 1, source_fps, fps)
    out = Positions.empty(length, max_players)
    for k in range(length):
        frame = int(round(k * source_fps / fps))
        if frame not in frames.calibrated:
            continue
        people = frames.people.get(frame, [])
        found = Detections.none()
        if people:
            table = np.asarray(people, np.float64)                          # [k, 5]: x, y, team, role, jersey
            found = Detections(table[:, :2].astype(np.float32), table[:, 2].astype(np.int8),
                               table[:, 3].astype(np.int8), table[:, 4].astype(np.int8))
        out.put(k, found)
        if frame in frames.balls:
            out.put_ball(k, frames.balls[frame][:2])
    return out


class GameStateJsonLocalizer(Localizer):
    def json_path(self, source: HalfSource) -> Path:
        if source.game_dir is None:
            raise InputError("the gamestate_json backend needs the game folder (--game-dir)")
        return Path(source.game_dir) / self.config["gamestate_json"]["file"].format(half=source.half)

    def localize(self, source: HalfSource) -> Positions:
        frames = read_gamestate(self.json_path(source))
        return resample(frames, self.config["gamestate_json"]["fps"], self.fps, self.max_players, source.length)

    def sources(self, source: HalfSource) -> list[Path]:
        return [self.json_path(source)]
