"""Backend `classical`: calibrate the broadcast camera from the pitch lines it sees and find players as colour
blobs, from pixels only (made for the rendered synthetic broadcast; FACTS §6).

Per frame (RGB, from a frames cache):
1. masks: grass = green-dominant pixels (relative dominance: chroma subsampling tints white lines green);
   lines = unsaturated pixels brighter than the pixels 2 px away on both sides (thin: not the edge of a white
   shirt), amid grass, in connected pieces of at least 8 px that are not compact solid blocks (white shorts);
2. camera: a pan-tilt-zoom `Camera` (roll 0) at a rig position, fitted by robust least squares (soft-L1,
   analytic Jacobian, a small Levenberg-Marquardt loop: scipy's least_squares costs more in overhead than these
   3-parameter problems do) to two chamfer terms, both in pixels: every sampled line pixel back-projected to
   the ground lies on a model line (distance field of `pitch.line_points`, one quarter of the pitch by
   symmetry, turned into pixels by the local projection Jacobian), and every model line point projected into
   the picture lands on a line pixel (chessboard distance transform of the line mask at half resolution,
   capped at 12 px). The second term widens the basin (search, wide fits, rig); a frame's final fit uses the
   first alone, which is exact and needs no distance transform;
3. tracking: a frame starts from the last accepted camera (also across a cut), turned by the shift of the line
   pattern since that frame (phase correlation of the line masks at half resolution), at the zoom change
   (0.8-1.25x) that a cheap line score prefers; if that fit fails, a wide-basin fit (cap 30 px) follows;
4. search, when tracking fails (the first frame; after a long cut): broadcast views aimed anywhere on the pitch,
   15-75 m across, scored by a cheap chamfer on sparse samples; the best views' neighbourhoods are scored
   again, the best 3 get a wide then a final fit. The rig position starts nominal (`rig`) and is refined once
   per half, jointly with pan/tilt/zoom of `rig_frames` frames spread over the half;
5. acceptance (else `calibrated = False` and no people: never guessed): at least `min_line_pixels` line pixels
   and `min_grass_share` grass; after the fit, median line-pixel distance to the model <= `max_median_px`, at
   least `min_explained` of the line pixels within 2 px of it, at least `min_matched` of the model points in the
   picture within 2 px of a line pixel (exact distances, by a k-d tree of the line pixels), and at least 15
   model points (22 m of lines) in the picture. Close-ups, replays (another camera position) and crowd shots
   fail these;
6. mirror guard (FACTS §6: the pitch is symmetric, partial views are degenerate): a tracked fit may not turn
   the pan by more than `max_pan_step` rad per second since the last accepted camera; in a search, among fits
   whose cost is within 10% of the best, the one whose pan is closest to the last accepted pan wins;
7. people: non-grass, non-line pixels over the pitch (+ 3 m), opened vertically (3 px) so line fringes do not
   join a player; connected components as tall as a person standing there (0.5-2.5x); one up to 4 people wide
   is split into equal columns, wider ones (boards) and ones cut by the picture's bottom edge are dropped. Feet
   = bottom centre, through the camera onto the pitch; feet behind a goal line (the net) are dropped, and so are
   detections at an image position that recurs in over 10% of the frames (a score bug). More than P people in a
   sample: the P nearest to the ground point under the image centre are kept;
8. teams: shirt colours (the most saturated third of the shirt band) of the whole half in 6 k-means clusters,
   close ones merged; the two largest are the teams, team 0 the one with the smaller mean x (it defends the
   left goal); a dark cluster is the referee; a cluster mostly in the outer thirds is goalkeepers, each of the
   team defending his side; the rest is role "other", team -1.

Measured on 10 rendered halves of the default world (300 s, 398x224): every main-camera frame calibrated,
none of the cut frames; median ground error of the camera over the visible pitch ~0.13 m; people within 2 m:
recall ~0.89-0.91, precision ~0.90-0.92, median error ~0.21-0.22 m, team accuracy ~0.96-0.97. Cost: 7.5-8.5 ms
CPU per sample over a half (up to ~10 when the shared host is busy), one process on the project's 2-core
machine: reads ~1.2 ms, masks ~1.4, camera ~3, rig refinement ~0.7, blobs ~1.3, clustering included; plus
~0.8 s of imports per process.

from __future__ import annotations

import math

Modules: `masks` (step 1), `calibration` (2, 3 and 5: the camera model, its fit and the acceptance numbers),
`search` (4), `tracker` (3, 5, 6: frame after frame, and the rig), `blobs` (7, 8), `ball` (the ball, by its
shadow), `backend` (the Localizer).
"""
