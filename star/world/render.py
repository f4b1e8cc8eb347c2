"""The broadcast renderer of the synthetic world: one half of a match as an H.264 video.

A main camera (pan-tilt-zoom, fixed behind the near touchline) follows play; cuts away from it show close-ups
(cards, the substitution board, a celebration, an injury, the ball in the net, a player, the crowd) and replays.
The main camera's picture is drawn from 3-D geometry with `Camera`, so the cameras `render_half` returns are the
exact truth a localizer can be scored against.

Modules: `camerawork` (where the main and replay cameras look), `drawing` (stadium, people and ball through a
camera), `scenes` (scoreboard, replay banner, close-up scenes); this one composes the frames and encodes them.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from star.errors import InputError
from star.geometry.camera import Camera
from star.provenance import atomic_path
from star.world.camerawork import (
    at_times,
    fixture_rng,
    follow_play,
    is_cut,
    main_camera_position,
    replay_cameras,
    replay_time,
    shots_at,
)
from star.world.drawing import REFEREE, ROOF, SKIN, Look, Stadium, draw_ball, draw_people, person_looks
from star.world.match import HalfTrack, Match, Person, Shot
from star.world.scenes import SCENES, CutScene, Scoreboard, replay_banner

# ---------------------------------------------------------------- the broadcast

class Broadcast:
    """Renders the frames of one half: main camera, close-ups and replays."""

    def __init__(self, match: Match, track: HalfTrack, world: dict, seed: int):
        self.match, self.track = match, track
        self.width, self.height, self.fps = world["width"], world["height"], world["video_fps"]
        self.times = np.arange(round(track.duration * self.fps)) / self.fps
        self.rng = np.random.default_rng([seed, track.half, 5_003])   # what cuts show
        home, away = (kit.shirt for kit in match.kits)
        self.stadium = Stadium(fixture_rng(match, "stadium"), home, away)
        self.replay_stadium = Stadium(fixture_rng(match, "stadium"), home, away, lines=False, goals=False)
        self.looks = person_looks(match)
        self.part_colours = [look.part_colours() for look in self.looks]
        self.cameras = follow_play(track, self.times, main_camera_position(match), self.width, self.height)
        self.shots = shots_at(track.shots, self.times)
        self.xy = at_times(track.xy, track.rate, self.times)                # [F, people, 2]
        self.ball = at_times(track.ball, track.rate, self.times)            # [F, 3]
        self.scoreboard = Scoreboard(match, track, self.height)
        self.cut_cache: dict[Shot, tuple] = {}
        self.blank = Image.new("RGB", (self.width, self.height), ROOF)

    def true_cameras(self) -> list[dict | None]:
        return [None if is_cut(shot) else cam.to_dict() for shot, cam in zip(self.shots, self.cameras, strict=True)]

    def frame(self, i: int) -> Image.Image:
        shot, t = self.shots[i], float(self.times[i])
        if not is_cut(shot):
            img = self._main_frame(self.cameras[i], self.xy[i], self.ball[i], self.stadium)
        elif shot.view == "replay":   # the banner replaces the scoreboard
            img = self._replay_frame(shot, i)
            replay_banner(img)
            return img
        else:
            img = self._closeup_frame(shot, t)
        img.paste(self.scoreboard.patch(t), (max(2, self.width // 60), max(2, self.height // 40)))
        return img

    def _main_frame(self, camera: Camera, xy: np.ndarray, ball: np.ndarray, stadium: Stadium) -> Image.Image:
        img = self.blank.copy()
        canvas = ImageDraw.Draw(img)
        stadium.draw(canvas, camera)
        draw_people(canvas, camera, xy, self.part_colours)
        draw_ball(canvas, camera, ball)
        return img

    def _replay_frame(self, shot: Shot, i: int) -> Image.Image:
        if shot not in self.cut_cache:
            frames = np.flatnonzero([s is shot for s in self.shots])
            cams = replay_cameras(self.track, shot, self.times[frames], self.width, self.height)
            self.cut_cache[shot] = (frames[0], cams)
        first, cams = self.cut_cache[shot]
        t = replay_time(shot, float(self.times[i]))
        xy = at_times(self.track.xy, self.track.rate, np.array([t]))[0]    # [people, 2]
        ball = at_times(self.track.ball, self.track.rate, np.array([t]))[0]
        return self._main_frame(cams[i - first], xy, ball, self.replay_stadium)

    def _closeup_frame(self, shot: Shot, t: float) -> Image.Image:
        """A still composed once per shot, larger than the frame, seen through a slowly drifting window."""
        if shot not in self.cut_cache:
            margin = self.width // 12
            img = Image.new("RGB", (self.width + 2 * margin, self.height + 2 * margin), ROOF)
            cue = shot.cue if shot.cue in SCENES else "player"
            SCENES[cue](img, ImageDraw.Draw(img), self.rng, self._scene(shot, cue))
            self.cut_cache[shot] = (img, margin)
        img, margin = self.cut_cache[shot]
        progress = (t - shot.start) / max(shot.end - shot.start, 1e-6)
        dx, dy = round(2 * margin * progress), round(margin * (1 - 0.5 * progress))
        return img.crop((dx, dy, dx + self.width, dy + self.height))

    def _scene(self, shot: Shot, cue: str) -> CutScene:
        people = self.match.people
        subject = people[shot.subject] if shot.subject is not None else None
        team = shot.team if shot.team in (0, 1) else (subject.team if subject and subject.team in (0, 1) else 0)
        kit = self.match.kits[team]
        team_look = Look(kit.shirt, kit.shorts, kit.shirt, SKIN[0])
        referee = next((p for p in people if p.role == "referee"), None)
        return CutScene(
            cue=cue, team_look=team_look, subject=subject,
            subject_look=self.looks[subject.id] if subject else team_look,
            referee_look=self.looks[referee.id] if referee else Look(REFEREE, REFEREE, REFEREE, SKIN[1]),
            home_away=(self.match.kits[0].shirt, self.match.kits[1].shirt),
            numbers=self._substitution_numbers(shot, subject),
        )

    def _substitution_numbers(self, shot: Shot, subject: Person | None) -> tuple[int, int]:
        """Shirt numbers (off, on) of the substitution of the shot's subject (else the nearest one in time); the
        subject's number twice when the half has none."""
        subs = [e for e in self.track.events if e.kind == "substitution" and len(e.players) >= 2]
        if subs:
            event = min(subs, key=lambda e: (shot.subject not in e.players, abs(e.time - shot.start)))
            off, on = (self.match.people[p].shirt for p in event.players[:2])
            return off, on
        number = subject.shirt if subject else 0
        return number, number


def check_inputs(match: Match, track: HalfTrack, world: dict, out_path: Path) -> None:
    """Refuse tracks and sizes the renderer cannot draw, naming the video and the problem."""
    problems = []
    if world["width"] % 2 or world["height"] % 2:
        problems.append(f"world.width x height {world['width']}x{world['height']} must be even (yuv420p)")
    if track.xy.ndim != 3 or track.xy.shape[1:] != (len(match.people), 2):
        problems.append(f"track.xy has shape {track.xy.shape}, expected [N, {len(match.people)} people, 2]")
    if track.ball.shape != (len(track.xy), 3):
        problems.append(f"track.ball has shape {track.ball.shape}, expected [{len(track.xy)}, 3]")
    if not (track.rate > 0 and track.duration > 0):
        problems.append(f"track rate {track.rate} Hz and duration {track.duration} s must be positive")
    if problems:
        raise InputError(f"cannot render {out_path} (half {track.half}): " + "; ".join(problems))


def render_half(match: Match, track: HalfTrack, out_path: Path, world: dict, seed: int) -> list[dict | None]:
    """Render one half's broadcast to an H.264 video at `out_path` (written atomically).

    Returns, per video frame, the true main camera as `Camera.to_dict()`, or None during a cut."""
    out_path = Path(out_path)
    check_inputs(match, track, world, out_path)
    broadcast = Broadcast(match, track, world, seed)
    rate = Fraction(world["video_fps"]).limit_denominator(1000)
    with atomic_path(out_path, suffix=out_path.suffix) as tmp:
        with av.open(str(tmp), "w", options={"fflags": "+bitexact"}) as container:  # no random ids/dates
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = broadcast.width, broadcast.height, "yuv420p"
            # one thread: halves render in parallel processes, and a single-threaded x264 is bit-exact
            stream.options = {"crf": str(world["crf"]), "preset": world["preset"], "threads": "1"}
            for i in tqdm(range(len(broadcast.times)), desc=f"render {out_path.name}", unit="frame", leave=False):
                frame = av.VideoFrame.from_image(broadcast.frame(i))
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return broadcast.true_cameras()
