"""Calibration frame after frame over one half (steps 3, 5, 6), the rig refinement, and the half's people."""

from __future__ import annotations

import numpy as np

from star.geometry import pitch
from star.positions.backends import ROLE_INDEX, Detections, Positions
from star.positions.classical.ball import find_ball
from star.positions.classical.blobs import Found, assign_teams, find_blobs, near_pitch, static_in_image
from star.positions.classical.calibration import (MIN_VISIBLE, WIDE_CAP, Fit, Observation, fit_camera, image_shift,
                                                  joint_rig_fit, refine, summarise, to_camera)
from star.positions.classical.search import SEARCH_KEEP, coarse_candidates, line_scores

ZOOM_STEPS = (0.8, 0.87, 0.93, 1.0, 1.07, 1.15, 1.25)   # zoom changes tried when tracking a frame
RIG_SLACK = 2.0          # the acceptance test is this much looser while the rig position is still nominal


class HalfTracker:
    """Calibrates frame after frame of one half and collects player blobs."""

    def __init__(self, settings: dict, size: tuple[int, int], fps: float):
        self.s = settings
        self.size = size
        self.rig = np.array(settings["rig"], float)
        self.max_step = settings["max_pan_step"] / fps
        # the last accepted camera, its frame's line spectrum, and the samples since: where tracking starts
        self.last: tuple[np.ndarray, np.ndarray, int] | None = None

    # -- per frame

    def usable(self, obs: Observation) -> bool:
        return obs.line_count >= self.s["min_line_pixels"] and obs.grass_share >= self.s["min_grass_share"]

    def accepted(self, fit: Fit, slack: float = 1.0) -> bool:
        """The acceptance test of the module docstring; `slack` > 1 loosens it (rig calibration)."""
        return (fit.median_px <= slack * self.s["max_median_px"]
                and fit.explained >= self.s["min_explained"] / slack
                and fit.matched >= self.s["min_matched"] / slack and fit.visible >= MIN_VISIBLE)

    def search(self, obs: Observation, slack: float = 1.0) -> Fit | None:
        """Fit after a cut: wide fits from the best grid cameras, final fits of those within 50% of the best wide
        cost; among accepted final fits within 10% of the best, the mirror guard takes the one whose pan is
        closest to the last accepted pan."""
        wide = [refine(theta, self.rig, obs, cap=WIDE_CAP, max_evals=10)
                for theta in coarse_candidates(obs, self.rig, SEARCH_KEEP)]
        costs = np.array([summarise(theta, self.rig, obs, cap=WIDE_CAP).cost for theta in wide])
        fits = [fit_camera(theta, self.rig, obs) for theta, cost in zip(wide, costs, strict=True)
                if cost <= 1.5 * costs.min()]
        good = [f for f in fits if self.accepted(f, slack)]
        if not good:
            return None
        best = min(f.cost for f in good)
        close = [f for f in good if f.cost <= 1.1 * best]
        if self.last is None:
            return min(close, key=lambda f: f.cost)
        return min(close, key=lambda f: abs(f.theta[0] - self.last[0][0]))

    def track(self, obs: Observation) -> Fit | None:
        """Fit from the last accepted camera turned by the shift of the line pattern since (phase correlation);
        a wide fit if that fails. After a cut the shift may be too large: the search then takes over."""
        theta, spectrum, gap = self.last
        du, dv = image_shift(spectrum, obs.spectrum, obs.size)
        # content moving right means the camera turned left: pan and tilt change by -shift / focal
        start = theta - np.array([du, dv, 0.0]) / np.exp(theta[2])
        # phase correlation sees no zoom: try a few zooms (and the unshifted camera) by a cheap line score
        zooms = np.log(ZOOM_STEPS)
        options = np.concatenate([start + np.outer(zooms, [0, 0, 1]), theta + np.outer(zooms, [0, 0, 1])])
        start = options[np.argmin(line_scores(obs, self.rig, options, WIDE_CAP))]
        for wide in (False, True):
            fit = fit_camera(start, self.rig, obs, wide)
            if self.accepted(fit) and abs(fit.theta[0] - theta[0]) <= self.max_step * gap:
                return fit
        return None

    def calibrate(self, obs: Observation) -> Fit | None:
        """This frame's camera (tracked from the last accepted one, else searched), or None."""
        fit = None
        if self.usable(obs):
            fit = self.track(obs) if self.last is not None else None
            fit = fit or self.search(obs)
        if fit is not None:
            self.last = (fit.theta, obs.spectrum, 1)
        elif self.last is not None:
            self.last = (*self.last[:2], self.last[2] + 1)
        return fit

    def step(self, rgb: np.ndarray) -> Found | None:
        """The people and the ball of one frame, or None if it is not calibrated."""
        obs = Observation.from_frame(rgb)
        fit = self.calibrate(obs)
        if fit is None:
            return None
        camera = to_camera(fit.theta, self.rig, self.size)
        centre = camera.to_pitch(np.array([[self.size[0] / 2, self.size[1] / 2]]))[0]
        blobs = find_blobs(rgb, obs, camera)
        uv = np.array([b.foot_uv for b in blobs]).reshape(-1, 2)
        xy = camera.to_pitch(uv) if len(uv) else uv
        # feet on the pitch; behind a goal line is the net, not a person
        keep = (np.isfinite(xy).all(1) & (np.abs(xy[:, 0]) <= pitch.HALF_L + 0.5)
                & (np.abs(xy[:, 1]) <= pitch.HALF_W + 1.5))
        colours = np.array([b.colour for b in blobs]).reshape(-1, 3)
        ball = find_ball(rgb, camera, near_pitch(camera, self.size))
        return Found(xy[keep], colours[keep], uv[keep], centre, ball)

    # -- per half

    def calibrate_rig(self, frames: list[np.ndarray]) -> None:
        """Refine the camera position once per half: fit frames spread over the half at the nominal rig (with
        slack: pan, tilt and zoom absorb most of a position error), then fit the position jointly with them."""
        if not self.s["refine_rig"]:
            return
        thetas, observations = [], []
        for rgb in frames:
            obs = Observation.from_frame(rgb)
            fit = self.search(obs, slack=RIG_SLACK) if self.usable(obs) else None
            if fit is not None:
                thetas.append(fit.theta)
                observations.append(obs)
        if len(thetas) >= 3:
            self.rig = joint_rig_fit(self.rig, thetas, observations)

    def positions(self, people: list[Found | None], max_players: int) -> Positions:
        """Pack a half's detections, with teams and roles from its colour clusters; drop overlay artefacts."""
        out = Positions.empty(len(people), max_players)
        found = [p for p in people if p is not None]
        if not found:
            return out
        xy = np.concatenate([p.xy for p in found])
        keep = ~static_in_image(np.concatenate([p.uv for p in found]), len(found))
        team, role = np.full(len(xy), -1, np.int8), np.full(len(xy), ROLE_INDEX["other"], np.int8)
        team[keep], role[keep] = assign_teams(xy[keep], np.concatenate([p.colour for p in found])[keep])
        start = 0
        for i, p in enumerate(people):
            if p is None:
                continue
            rows = slice(start, start + len(p.xy))
            start += len(p.xy)
            picked = keep[rows]
            out.put(i, Detections(p.xy[picked].astype(np.float32), team[rows][picked], role[rows][picked]), p.centre)
            if p.ball is not None:
                out.put_ball(i, p.ball)
        return out
