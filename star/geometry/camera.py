"""A pan-tilt-zoom pinhole camera over the pitch frame of `star.geometry.pitch` (z down).

Renderer and calibration share this geometry: the renderer draws with the true camera, the classical localizer
fits one of these to pitch lines it sees. Image coordinates: u to the right, v down, pixels, origin top-left.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    x: float          # position (m); a main broadcast camera sits behind the near touchline: y > 34, z < 0
    y: float
    z: float
    pan: float        # rad; 0 looks along -y (across the pitch), positive turns towards +x
    tilt: float       # rad; positive looks down
    focal: float      # pixels
    width: int
    height: int

    def rotation(self) -> np.ndarray:
        """World -> camera rotation; rows are the camera's right, down and forward axes in world coordinates."""
        cp, sp, ct, st = np.cos(self.pan), np.sin(self.pan), np.cos(self.tilt), np.sin(self.tilt)
        forward = np.array([sp * ct, -cp * ct, st])
        right = np.array([cp, sp, 0.0])
        down = np.cross(forward, right)
        return np.stack([right, down, forward])

    def intrinsics(self) -> np.ndarray:
        return np.array([[self.focal, 0, self.width / 2], [0, self.focal, self.height / 2], [0, 0, 1.0]])

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z])

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points [n, 3] (or ground points [n, 2]) -> pixels [n, 2] and depth [n] (<= 0: behind)."""
        points = np.asarray(points, float)
        if points.shape[-1] == 2:
            points = np.concatenate([points, np.zeros((*points.shape[:-1], 1))], axis=-1)
        cam = (points - self.centre) @ self.rotation().T                    # [n, 3] camera frame
        depth = cam[:, 2]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        uv = cam[:, :2] / safe[:, None] * self.focal + np.array([self.width / 2, self.height / 2])
        return uv, depth

    def to_pitch(self, uv: np.ndarray) -> np.ndarray:
        """Pixels [n, 2] -> ground points [n, 2] (rays that miss the ground in front give NaN)."""
        uv = np.asarray(uv, float).reshape(-1, 2)
        K_inv = np.linalg.inv(self.intrinsics())
        rays = np.column_stack([uv, np.ones(len(uv))]) @ K_inv.T @ self.rotation()   # [n, 3] world directions
        with np.errstate(divide="ignore", invalid="ignore"):
            s = -self.z / rays[:, 2]                                                    # reach z = 0
        ground = self.centre[:2] + s[:, None] * rays[:, :2]
        ground[~(s > 0)] = np.nan
        return ground

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}
