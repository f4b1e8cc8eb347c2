"""People in a calibrated frame (step 7) and their teams and roles over a half (step 8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from star.geometry import pitch
from star.geometry.camera import Camera
from star.positions.backends import ROLE_INDEX
from star.positions.classical.calibration import Observation, _axes_with_derivatives
from star.positions.classical.masks import components

PERSON_HEIGHT = 1.8      # m
PERSON_WIDTH = 0.3       # a person's width in image, relative to height
COLOUR_BLEED = np.array([0.5, 0.9])   # px: 4:2:0 chroma spreads a figure's colour right and down (measured)
PITCH_MARGIN = 3.0       # m around the pitch where players are looked for
COLOUR_CLUSTERS = 6      # two teams, two goalkeepers, the referee, and one for blurred mixtures
COLOUR_SAMPLE = 1500     # detections the colour clusters are fitted on
SAME_KIT = 40            # RGB distance under which two colour clusters are one kit
DARK_KIT = 80            # a cluster whose brightest channel is below this wears black: the referee
STATIC_SHARE, STATIC_MIN = 0.1, 10   # share (and least number) of frames that makes a detection an overlay


@dataclass
class Found:
    """People detected in one calibrated frame."""

    xy: np.ndarray        # [k, 2] pitch metres
    colour: np.ndarray    # [k, 3] shirt RGB (see find_blobs)
    uv: np.ndarray        # [k, 2] foot pixels
    centre: np.ndarray    # [2] ground point under the image centre
    ball: np.ndarray | None = None   # [2] the ball's ground point, when found


@dataclass
class Blob:
    foot_uv: np.ndarray       # [2] px, bottom edge of the feet
    colour: np.ndarray        # [3] shirt RGB (see find_blobs)


def near_pitch(camera: Camera, size: tuple[int, int], step: int = 4) -> np.ndarray:
    """[H, W] pixels whose ground point lies on the pitch or within PITCH_MARGIN of it (on a `step`-px grid)."""
    w, h = size
    right, down, forward = _axes_with_derivatives(camera.pan, camera.tilt)[:3]      # camera.rotation(), cached
    a = (np.arange(0, w, step) + step / 2 - w / 2) / camera.focal                     # [w/step]
    b = (np.arange(0, h, step) + step / 2 - h / 2) / camera.focal                     # [h/step]
    # the ray through each grid pixel, per world axis, as an outer sum [h/step, w/step]
    ray = [a[None] * right[k] + b[:, None] * down[k] + forward[k] for k in range(3)]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -camera.z / ray[2]                                                        # reach z = 0
        near = (s > 0) & pitch.on_pitch(camera.x + s * ray[0], camera.y + s * ray[1], PITCH_MARGIN)
    rows, cols = near.shape
    blocks = np.broadcast_to(near[:, None, :, None], (rows, step, cols, step))          # each grid cell's pixels
    return blocks.reshape(rows * step, cols * step)[:h, :w]


def find_blobs(rgb: np.ndarray, obs: Observation, camera: Camera) -> list[Blob]:
    """Person-sized blobs of non-grass, non-line pixels standing on the pitch. A blob as wide as a few people
    side by side is split into equal columns; wider ones (boards, crowd) and blobs cut by the bottom edge of
    the picture (feet unseen) are dropped. Worked out over all pixels at once, grouped by blob part (a loop
    over blobs costs more in numpy calls than the pixels do)."""
    h, w = rgb.shape[:2]
    candidates = ~(obs.grass | obs.lines) & near_pitch(camera, (w, h))
    # a vertical opening removes what is less than 3 px tall: line pixels beside a player, which the line mask
    # misses because they are not surrounded by grass, would otherwise join his blob
    core = candidates[:-2] & candidates[1:-1] & candidates[2:]                          # [H-2, W] 3-px erosion
    candidates = np.zeros_like(candidates)
    for shift in range(3):
        candidates[shift:h - 2 + shift] |= core
    labels, _ = ndimage.label(candidates.view(np.uint8), structure=np.ones((3, 3)))
    flat = np.flatnonzero(candidates)
    _, top, bottom, left, right = components(labels, flat)                               # [k] each
    expected = person_heights(camera, np.stack([(left + right) / 2, bottom], 1))
    tall, wide = bottom - top, right - left
    side_by_side = wide / np.maximum(PERSON_WIDTH * expected, 1e-9)
    person_sized = (bottom < h) & (tall >= 0.5 * expected) & (tall <= 2.5 * expected) & (side_by_side <= 4)
    # blur widens a figure by a pixel or two: split only from 1.7 people wide
    parts = np.maximum(1, (np.minimum(side_by_side, 4) + 0.3).astype(int))               # [k] at most 4

    # the pixels of person-sized blobs, each in its part: column j of parts, from round(j * width / parts)
    label = labels.ravel()[flat] - 1                                                     # [n] 0-based blob
    flat, label = flat[person_sized[label]], label[person_sized[label]]
    rows, cols = np.divmod(flat, w)
    part = np.zeros(len(flat), np.intp)
    for j in range(1, 4):
        part += (j < parts[label]) & (cols - left[label] >= np.round(j * wide[label] / parts[label]))
    group = (np.cumsum(parts) - parts)[label] + part                                      # [n] part id
    order = np.argsort(group, kind="stable")                                              # row-major within
    group, rows, cols, flat, label = group[order], rows[order], cols[order], flat[order], label[order]
    starts = np.flatnonzero(np.diff(group, prepend=-1))                                  # [q] first pixel
    if not len(starts):
        return []
    count = np.diff(np.append(starts, len(group)))
    index = np.repeat(np.arange(len(starts)), count)                                     # [n] part 0..q-1
    part_top, part_bottom = np.minimum.reduceat(rows, starts), np.maximum.reduceat(rows, starts) + 1
    height, size = part_bottom - part_top, expected[label[starts]]

    # feet: the mean column of a part's bottom row, at its lower edge
    feet = rows == part_bottom[index] - 1
    foot_u = np.bincount(index[feet], cols[feet], len(starts)) / np.bincount(index[feet], minlength=len(starts))
    foot_uv = np.stack([foot_u + 0.5, part_bottom.astype(float)], 1) - COLOUR_BLEED      # [q, 2]

    # shirt: the band 20-50% down the figure (all of it when the band is empty); the mean of its most saturated
    # third, as chroma subsampling bleeds grass and shorts into a small figure, least at its most colourful pixels
    band = (rows >= (part_top + (0.2 * height).astype(int))[index]) & \
           (rows <= (part_top + (0.5 * height).astype(int))[index])
    band |= np.bincount(index[band], minlength=len(starts))[index] == 0
    colours = rgb.reshape(-1, 3)[flat[band]].astype(np.float32)                          # [m, 3]
    saturation = colours.max(1) - colours.min(1)
    by_part = np.lexsort((-saturation, index[band]))                                     # stable: row-major ties
    members = index[band][by_part]
    rank = np.arange(len(members)) - np.searchsorted(members, members)                   # place within its part
    top_third = rank < np.maximum(1, np.bincount(members, minlength=len(starts)) // 3)[members]
    taken = members[top_third]
    shirt = np.stack([np.bincount(taken, colours[by_part][top_third, c], len(starts)) for c in range(3)], 1)
    shirt /= np.bincount(taken, minlength=len(starts))[:, None]                           # [q, 3]

    keep = (height >= 0.5 * size) & (count >= 0.08 * size ** 2)
    return [Blob(uv, colour) for uv, colour in zip(foot_uv[keep], shirt[keep], strict=True)]


def person_heights(camera: Camera, foot_uv: np.ndarray) -> np.ndarray:
    """Expected image height (px) [k] of a person whose feet are at pixels [k, 2]; 0 where unknown."""
    axes = _axes_with_derivatives(camera.pan, camera.tilt)[:3]                        # camera.rotation(), cached
    # the feet in camera coordinates: s * (a, b, 1), s the distance along the optical axis to the ground
    a = (foot_uv[:, 0] - camera.width / 2) / camera.focal
    b = (foot_uv[:, 1] - camera.height / 2) / camera.focal
    s = -camera.z / (a * axes[0, 2] + b * axes[1, 2] + axes[2, 2])                  # [k]
    # the head PERSON_HEIGHT above the feet (z is down): the camera's z-axis components times -height
    head_y = s * b - PERSON_HEIGHT * axes[1, 2]
    head_z = s - PERSON_HEIGHT * axes[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        head_v = camera.focal * head_y / head_z + camera.height / 2
        return np.where((s > 0) & (head_z > 0), foot_uv[:, 1] - head_v, 0.0)


def assign_teams(xy: np.ndarray, colours: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """team [n] and role [n] of all detections of a half, from their shirt colours [n, 3] and positions [n, 2].

    k-means on colour (close centres merged); the two largest clusters are the teams (team 0 the one with the
    smaller mean x: it defends the left goal); a dark small cluster is the referee; a small cluster mostly in the
    outer thirds of the pitch holds goalkeepers, each of the team defending the goal on his side; the rest is
    "other"."""
    from scipy.cluster.vq import kmeans2, vq
    from scipy.spatial.distance import pdist, squareform

    n = len(colours)
    team, role = np.full(n, -1, np.int8), np.full(n, ROLE_INDEX["other"], np.int8)
    k = min(COLOUR_CLUSTERS, len(np.unique(colours, axis=0)))
    if k < 2:
        return team, role
    sample = colours[np.linspace(0, n - 1, min(n, COLOUR_SAMPLE)).astype(int)]          # fit on a spread subset
    centres, _ = kmeans2(sample, k, minit="++", seed=seed)
    # k-means splits a kit in two when there are fewer kinds of kit than clusters: merge close centres
    merged = np.arange(k)
    for i, j in zip(*np.nonzero(squareform(pdist(centres)) < SAME_KIT), strict=True):
        merged[merged == merged[j]] = merged[i]
    labels = merged[vq(colours, centres)[0]]
    sizes = np.bincount(labels, minlength=k)
    by_size = [c for c in np.argsort(-sizes, kind="stable") if sizes[c]]
    for side, cluster in enumerate(sorted(by_size[:2], key=lambda c: xy[labels == c, 0].mean())):
        team[labels == cluster] = side
        role[labels == cluster] = ROLE_INDEX["player"]
    for cluster in by_size[2:]:
        members = labels == cluster
        x = xy[members, 0]
        if colours[members].mean(0).max() < DARK_KIT:
            role[members] = ROLE_INDEX["referee"]
        elif np.mean(np.abs(x) > pitch.HALF_L / 3) >= 0.6:
            role[members] = ROLE_INDEX["goalkeeper"]
            team[members] = (x > 0).astype(np.int8)
    return team, role


def static_in_image(uv: np.ndarray, frames: int) -> np.ndarray:
    """Detections [n] at an image position (2 px cells) that recurs in more than STATIC_SHARE of the calibrated
    frames: a score bug or logo over the pitch, not a person (people move, and so does the camera)."""
    if not len(uv):
        return np.zeros(0, bool)
    cells = np.floor(uv / 2).astype(int)
    _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.ravel()] > max(STATIC_MIN, STATIC_SHARE * frames)
