"""Calibrated player localization: per game half, up to P people per sample in pitch metres (the positions cache).

Backends (star.positions.backends.BACKENDS): `classical` (camera fitted to pitch lines, colour blobs, from
pixels), `gamestate_json` (SoccerNet Game State JSON), `sngamestate` (sn-gamestate run as a subprocess)."""
