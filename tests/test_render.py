"""The broadcast renderer: video format, true cameras, pitch lines, feet on the ground, cuts, determinism."""

from __future__ import annotations

import av
import numpy as np
import pytest

from star.config import section
from star.errors import InputError
from star.geometry import pitch
from star.geometry.camera import Camera
from star.world.match import Event, HalfTrack, Kit, Match, Person, Shot
from star.world.camerawork import follow_play
from star.world.drawing import GRASS, GRASS_LIGHT, PERSON_HEIGHT
from star.world.render import render_half
from star.world.scenes import Scoreboard

FPS, DURATION, RATE = 5, 16.0, 5.0
# no white kit, so every white-on-green pixel of the main camera is a pitch line, the ball or a goal
KITS = (Kit((200, 30, 40), (230, 230, 40), (250, 150, 0)), Kit((40, 80, 200), (20, 20, 60), (150, 20, 150)))
CUES = ("yellow_card", "red_card", "substitution", "celebration", "injury", "goal_net", "player", "crowd")
SHOTS = [Shot(0.0, 4.0, "main"), *(Shot(4.0 + k, 5.0 + k, "closeup", cue, k % 2, 3 + k) for k, cue in enumerate(CUES)),
         Shot(12.0, 14.0, "replay"), Shot(14.0, DURATION, "main")]


def people() -> list[Person]:
    """Two elevens (the first of each a goalkeeper) and the referee."""
    squads = [Person(11 * team + k, f"P{team}{k}", team, "goalkeeper" if k == 0 else "player", k + 1, True)
              for team in (0, 1) for k in range(11)]
    return [*squads, Person(22, "Ref", -1, "referee", 0, True)]


def tiny_match(events: list[Event] | None = None, half: int = 1) -> Match:
    """Play near the right penalty area (the camera zooms in): people on a well-spaced grid, drifting slowly."""
    n = int(DURATION * RATE) + 1
    t = np.arange(n) / RATE
    grid = np.stack(np.meshgrid(np.linspace(8, 48, 6), np.linspace(-26, 22, 4)), -1).reshape(-1, 2)[:23]   # [23, 2]
    xy = grid[None] + np.stack([0.4 * np.sin(t), 0.3 * np.cos(t)], -1)[:, None]                          # [n, 23, 2]
    xy[:, 20] = np.nan                                                    # off the pitch all half
    ball = np.column_stack([40 + 3 * np.sin(t / 3), 4 * np.cos(t / 4), np.abs(np.sin(t))])
    track = HalfTrack(half=half, duration=DURATION, rate=RATE, xy=xy.astype(np.float32),
                      ball=ball.astype(np.float32), events=events or [], shots=SHOTS, left_team=0)
    return Match(("Northbridge Rovers", "Eastport City"), KITS, ("A", "B"), people(), [track], "2030-08-10 - 15-00",
                 (0, 0))


def decode(path) -> tuple[list[np.ndarray], list[float], float]:
    """Frames (RGB), their timestamps (s) and the stream's average frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in container.decode(stream)]
        return [f for f, _ in frames], [t for _, t in frames], float(stream.average_rate)


@pytest.fixture(scope="module")
def world():
    return section("world", {"video_fps": 5})   # denser than the default 1 fps: cuts and timing at 0.2 s


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, world):
    match = tiny_match()
    path = tmp_path_factory.mktemp("render") / "1_224p.mkv"
    cameras = render_half(match, match.halves[0], path, world, seed=7)
    frames, times, rate = decode(path)
    return match, path, cameras, frames, times, rate


def frame_times() -> np.ndarray:
    return np.arange(int(DURATION * FPS)) / FPS


def cut_at(t: float) -> bool:
    return any(s.start <= t < s.end and s.view != "main" for s in SHOTS)


def is_white(img: np.ndarray) -> np.ndarray:
    """Bright in every channel (a one-pixel line takes a green tint from yuv420p's shared chroma)."""
    return img.min(-1) > 170


def is_grass(img: np.ndarray) -> np.ndarray:
    """Green and not bright (the blurred rim of a white patch is green-tinted too, but bright)."""
    r, g, b = (img[..., c].astype(int) for c in range(3))
    return (g > r + 25) & (g > b + 25) & (g < 170)


def line_pixels(img: np.ndarray) -> np.ndarray:
    """White pixels with grass two pixels away on both sides, across or along: thin white lines on green."""
    white, green = is_white(img), is_grass(img)
    across = np.zeros_like(white)
    across[2:-2] = green[:-4] & green[4:]
    along = np.zeros_like(white)
    along[:, 2:-2] = green[:, :-4] & green[:, 4:]
    return white & (across | along)


def test_video_has_the_configured_size_frame_count_and_rate(rendered, world):
    _, path, cameras, frames, times, rate = rendered
    assert path.exists() and not list(path.parent.glob(".*tmp*"))   # the temporary file was renamed
    assert len(frames) == len(cameras) == DURATION * FPS
    assert frames[0].shape == (world["height"], world["width"], 3)
    assert rate == FPS
    np.testing.assert_allclose(times, frame_times(), atol=1e-3)


def test_cameras_are_none_exactly_on_cut_frames(rendered, world):
    cameras = rendered[2]
    assert [c is None for c in cameras] == [cut_at(t) for t in frame_times()]
    camera = Camera(**next(c for c in cameras if c is not None))
    assert (camera.width, camera.height) == (world["width"], world["height"]) and camera.y > pitch.HALF_W


def test_main_camera_follows_play_near_the_box(rendered):
    cameras = [Camera(**c) for c in rendered[2] if c is not None]
    ball = np.array([40.0, 0.0])
    _, depth = cameras[-1].project(ball[None])
    aim = cameras[-1].to_pitch(np.array([[cameras[-1].width / 2, cameras[-1].height / 2]]))[0]
    assert depth[0] > 0 and np.linalg.norm(aim - ball) < 12      # the ball's area is in the middle of the picture
    assert cameras[-1].focal > cameras[0].focal * 1.2             # zoomed in as play stays near the box


def test_main_camera_has_a_dead_zone_and_lags_behind_big_moves():
    times = np.arange(150) / FPS                                          # 30 s
    ball_x = np.select([times < 10, times < 20], [0.0, 3.0], 30.0)        # still, a small step, a big one
    track = HalfTrack(1, 30.0, FPS, np.zeros((150, 0, 2)), np.column_stack([ball_x, 0 * times, 0 * times]), [], [], 0)
    cameras = follow_play(track, times, np.array([0.0, 46.0, -16.0]), 398, 224)
    pan = np.array([c.pan for c in cameras])
    assert pan[99] == pan[49]                                             # 3 m inside the dead zone: no move
    move = pan[149] - pan[99]
    assert 0 < pan[100] - pan[99] < 0.15 * move and pan[102] - pan[99] < 0.5 * move   # smoothly, with lag
    aim = cameras[-1].to_pitch(np.array([[199.0, 112.0]]))[0]
    assert abs(aim[0] - 30) <= 7                                          # caught up, up to the dead zone


def other_white_things(camera: Camera, ball: np.ndarray) -> np.ndarray:
    """Mask of the goals (posts and nets) and the ball: white on green, but no pitch line."""
    mask = np.zeros((camera.height, camera.width), bool)
    goals = [[[s * x, y, z] for x in (52.5, 54.5) for y in (-3.7, 3.7) for z in (0, -2.5)] for s in (-1, 1)]
    ball_box = [[ball[0] + dx, ball[1] + dy, z] for dx in (-.5, .5) for dy in (-.5, .5) for z in (0, -ball[2] - .5)]
    for box in [*goals, ball_box]:
        uv, depth = camera.project(np.array(box))
        if (depth > 0).all():
            (c0, r0), (c1, r1) = np.floor(uv.min(0)).astype(int) - 2, np.ceil(uv.max(0)).astype(int) + 2
            mask[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = True
    return mask


def test_pitch_lines_are_drawn_where_the_camera_projects_them(rendered):
    match, _, cameras, frames, _, _ = rendered
    track = match.halves[0]
    model = pitch.line_points(step=0.25)
    for i, (camera, img) in enumerate(zip(cameras, frames, strict=True)):
        lines = line_pixels(img)
        if camera is None:
            assert lines.sum() < 20   # no pitch markings in close-ups and replays (a replay's ball at most)
            continue
        camera = Camera(**camera)
        uv, depth = camera.project(model)
        h, w = lines.shape
        ok = (depth > 0) & (uv[:, 0] >= 3) & (uv[:, 0] < w - 3) & (uv[:, 1] >= 30) & (uv[:, 1] < h - 3)
        cols, rows = uv[ok, 0].astype(int), uv[ok, 1].astype(int)
        bright = is_white(img)
        near = np.zeros(len(rows), bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                near |= bright[rows + dr, cols + dc]
        assert ok.sum() > 200 and near.mean() > 0.93   # (players standing on a line hide a few samples)
        expected = np.zeros_like(lines)
        for dr in range(-2, 3):
            for dc in range(-2, 3):
                expected[np.clip(rows + dr, 0, h - 1), np.clip(cols + dc, 0, w - 1)] = True
        lines[:30], lines[:, :3], lines[:, -3:], lines[-3:] = False, False, False, False   # where samples were taken
        lines &= ~other_white_things(camera, track.ball[track.sample(i / FPS)])
        assert lines.sum() > 100 and (lines & ~expected).sum() < 0.02 * lines.sum()   # and nowhere else


def is_figure(img: np.ndarray) -> np.ndarray:
    """Neither grass (either mowing tone, give or take the codec's smear) nor a line (white, or green-tinted by
    yuv420p's shared chroma)."""
    r, g, b = (img[..., c].astype(int) for c in range(3))
    grass = np.min([np.abs(img.astype(int) - tone).max(-1) for tone in (GRASS, GRASS_LIGHT)], axis=0) < 40
    line = ((g > r + 20) & (g > b + 20) & (g >= 150)) | is_white(img)
    return ~grass & ~line


def test_feet_touch_the_projected_ground_point(rendered):
    """The bottom of each lone figure's blob is where its ground point projects (what a localizer relies on)."""
    match, _, cameras, frames, _, _ = rendered
    track = match.halves[0]
    checked = 0
    for i, (camera, img) in enumerate(zip(cameras, frames, strict=True)):
        if camera is None:
            continue
        camera = Camera(**camera)
        xy, ball = track.xy[track.sample(i / FPS)], track.ball[track.sample(i / FPS)]
        feet, depth = camera.project(xy)
        heads, _ = camera.project(np.column_stack([xy, np.full(len(xy), -PERSON_HEIGHT)]))
        scale = (feet[:, 1] - heads[:, 1]) / PERSON_HEIGHT                 # px per metre
        for k in np.flatnonzero(~np.isnan(xy).any(1) & (depth > 0) & (scale > 6)):
            (u, v), s = feet[k], scale[k]
            others = np.delete(np.arange(len(xy)), k)
            crowded = (np.abs(feet[others, 0] - u) < 0.6 * s + 4) & (np.abs(feet[others, 1] - v) < 2 * s + 6)
            c0, c1, r0, r1 = int(u) - 1, int(u) + 2, int(v - 0.5 * s), int(v) + 6
            if c0 < 0 or c1 > img.shape[1] or r0 < 30 or r1 > img.shape[0] or crowded.any() or \
                    np.linalg.norm(xy[k] - ball[:2]) < 3:   # the ball's shadow would join the blob
                continue
            legs = is_figure(img[r0:r1, c0:c1]).any(1)                     # rows from mid-shin down
            bottom = r0 + np.argmin(legs)                                 # the first row below the legs
            assert legs[0] and abs(bottom - v) <= 2, (i, k, bottom, v)
            checked += 1
    assert checked > 100


def test_cuts_are_distinct_from_each_other_and_from_the_main_camera(rendered):
    frames = rendered[3]

    def thumb(t: float) -> np.ndarray:   # what a 64x64 video encoder sees
        img = frames[int(round(t * FPS))].astype(float)
        h, w = img.shape[0] // 64 * 64, img.shape[1] // 64 * 64
        return img[:h, :w].reshape(64, h // 64, 64, w // 64, 3).mean(axis=(1, 3))   # [64, 64, 3]

    views = {cue: thumb(4.5 + k) for k, cue in enumerate(CUES)}
    views["replay"], views["main"] = thumb(13.0), thumb(2.0)
    names = list(views)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            gap = np.abs(views[names[a]] - views[names[b]]).mean()
            assert gap > 15, (names[a], names[b], gap)


def test_same_seed_gives_identical_video(rendered, tmp_path, world):
    match, path, cameras, _, _, _ = rendered
    again = render_half(match, match.halves[0], tmp_path / "again.mkv", world, seed=7)
    assert again == cameras
    # byte-identical files (no random segment id or date), so source checksums in provenance are stable
    assert (tmp_path / "again.mkv").read_bytes() == path.read_bytes()


def test_scoreboard_counts_goals_own_goals_and_penalties_across_halves():
    first = [Event(3.0, "goal", 0), Event(6.0, "own_goal", 0), Event(7.0, "penalty", 1, detail={"scored": False})]
    second = [Event(2.0, "penalty", 1, detail={"scored": True}), Event(5.0, "foul", 0)]
    match = tiny_match(first)
    track2 = tiny_match(second, half=2).halves[0]
    match.halves.append(track2)
    board1 = Scoreboard(match, match.halves[0], 224)
    assert board1.text(2.9) == "NOR 0-0 EAS  00:02"
    assert board1.text(6.5) == "NOR 1-1 EAS  00:06"
    assert board1.text(8.0) == "NOR 1-1 EAS  00:08"
    board2 = Scoreboard(match, track2, 224)
    assert board2.text(1.0) == "NOR 1-1 EAS  45:01" and board2.text(2.0) == "NOR 1-2 EAS  45:02"


def test_bad_tracks_are_refused_without_writing(tmp_path, world):
    match = tiny_match()
    track = match.halves[0]
    track.xy = track.xy[:, :5]
    out = tmp_path / "bad.mkv"
    with pytest.raises(InputError, match="bad.mkv.*track.xy"):
        render_half(match, track, out, world, seed=0)
    assert not list(tmp_path.iterdir())
