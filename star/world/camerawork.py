"""Where the broadcast looks: the main camera following play, the replay cameras, and tracks sampled at frame
times."""

from __future__ import annotations

import math
import zlib

import numpy as np

from star.geometry import pitch
from star.geometry.camera import Camera
from star.world.match import HalfTrack, Match, Shot

# Main camera: two cascaded exponential smoothers per axis give a smooth pan with a lag of about 2 tau.
FOLLOW_TAU = (0.7, 1.2)       # s, x and y
ZOOM_TAU = 1.5                # s
DEAD_ZONE = (6.0, 5.0)        # m: the ball may wander this far from the aim before the camera reacts
COVERAGE = (50.0, 30.0)       # m of pitch across the frame: play in midfield, play near a box
COVERAGE_AT = (20.0, 38.0)    # |x| of the ball (m) where coverage starts and ends its change
AIM_LIMITS = ((-46.0, 46.0), (-26.0, 24.0))

# ---------------------------------------------------------------- sampling tracks at frame times

def at_times(samples: np.ndarray, rate: float, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of samples [N, ...] taken at `rate` Hz, at `times` (s) -> [len(times), ...].

    NaN (off the pitch) wins over a valid neighbour, except at exact sample times."""
    pos = np.clip(np.asarray(times) * rate, 0, len(samples) - 1)
    i0 = np.floor(pos).astype(int)
    w = pos - i0
    i1 = np.where(w > 0, np.minimum(i0 + 1, len(samples) - 1), i0)
    w = w.reshape(-1, *[1] * (samples.ndim - 1))                         # [F, 1, ...] broadcast over samples
    return samples[i0] * (1 - w) + samples[i1] * w


def shots_at(shots: list[Shot], times: np.ndarray) -> list[Shot | None]:
    """The shot showing at each time; None where no shot is listed (the main camera)."""
    found: list[Shot | None] = [None] * len(times)
    for shot in shots:
        for i in np.flatnonzero((times >= shot.start) & (times < shot.end)):
            found[i] = shot
    return found


def is_cut(shot: Shot | None) -> bool:
    return shot is not None and shot.view != "main"


# ---------------------------------------------------------------- the main camera

def fixture_rng(match: Match, purpose: str) -> np.random.Generator:
    """A generator seeded by the fixture: what belongs to the game (stadium, camera rig, faces) is the same in
    both halves."""
    return np.random.default_rng(zlib.crc32(f"{match.kickoff}|{match.teams}|{purpose}".encode()))


def main_camera_position(match: Match) -> np.ndarray:
    """Where this game's main camera stands (x, y, z): near the halfway line, behind the near touchline, high up."""
    rng = fixture_rng(match, "camera")
    return np.array([rng.uniform(-3, 3), pitch.HALF_W + rng.uniform(10, 16), -rng.uniform(13, 19)])


def _smoothing(tau: float, dt: float) -> float:
    return 1.0 - math.exp(-dt / tau)


def follow_play(track: HalfTrack, times: np.ndarray, position: np.ndarray, width: int, height: int) -> list[Camera]:
    """The main camera at each time: aims at the ball with a dead zone and lag, zooms in near a box."""
    ball = at_times(track.ball, track.rate, times)[:, :2]                   # [F, 2]
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    follow = np.array([_smoothing(t, dt) for t in FOLLOW_TAU])
    zoom = _smoothing(ZOOM_TAU, dt)
    start = np.nan_to_num(ball[0])
    target, stage1, aim = start.copy(), start.copy(), start.copy()
    log_cover = math.log(COVERAGE[0])
    cameras = []
    for b in ball:
        if not np.isnan(b).any():   # the dead zone: the target moves only when the ball leaves it
            target = np.clip(target, b - DEAD_ZONE, b + DEAD_ZONE)
            log_cover += zoom * (math.log(np.interp(abs(b[0]), COVERAGE_AT, COVERAGE)) - log_cover)
        stage1 += follow * (target - stage1)
        aim += follow * (stage1 - aim)
        aim = np.clip(aim, *np.array(AIM_LIMITS).T)
        cameras.append(_looking_at(position, aim, math.exp(log_cover), width, height))
    return cameras


def _looking_at(position: np.ndarray, aim: np.ndarray, coverage: float, width: int, height: int) -> Camera:
    """A camera at `position` centred on the ground point `aim`, `coverage` metres across the frame there."""
    dx, dy = aim[0] - position[0], aim[1] - position[1]
    ground = math.hypot(dx, dy)
    distance = math.hypot(ground, position[2])
    values = dict(x=position[0], y=position[1], z=position[2], pan=math.atan2(dx, -dy),
                  tilt=math.atan2(-position[2], ground), focal=width * distance / coverage)
    # rounded as Camera.to_dict rounds, so the camera drawn is exactly the camera reported
    return Camera(**{k: round(float(v), 6) for k, v in values.items()}, width=width, height=height)


# ---------------------------------------------------------------- replays

def replay_time(shot: Shot, t: float) -> float:
    """Video time a replay shows at time t: the stretch just before the cut, at half speed."""
    return shot.start - (shot.end - t) / 2


def replay_cameras(track: HalfTrack, shot: Shot, times: np.ndarray, width: int, height: int) -> list[Camera]:
    """A low camera across the pitch, or high behind the nearer goal, tightly on the ball, steadied."""
    ball = np.nan_to_num(at_times(track.ball, track.rate, np.array([replay_time(shot, t) for t in times]))[:, :2])
    centre = ball.mean(axis=0)
    if abs(centre[0]) > 30:   # behind that goal, looking back up the pitch
        position = np.array([np.sign(centre[0]) * (pitch.HALF_L + 9), 0.3 * centre[1], -9.0])
    else:                     # from the far side, low: the mirror of the main camera's view
        position = np.array([centre[0] - 6, -pitch.HALF_W - 10, -5.0])
    aim = ball[0].copy()
    alpha = _smoothing(0.5, float(times[1] - times[0]) if len(times) > 1 else 1.0)
    cameras = []
    for b in ball:
        aim += alpha * (b - aim)
        cameras.append(_looking_at(position, aim, 16.0, width, height))
    return cameras

