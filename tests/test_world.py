"""The synthetic match world: simulation, commentary and the SoccerNet writers (rendering stubbed but once)."""

from __future__ import annotations

import json
import re

import av
import numpy as np
import pytest

from star.cli import main as star_main
from star.config import section
from star.data.soccernet import CAPTION_LABELS, load_labels
from star.errors import InputError
from star.world import synthesize as synth
from star.geometry.camera import Camera
from star.world.commentary import commentate
from star.geometry.pitch import HALF_L, distance_to_goal
from star.world.plan import plan_games
from star.world.scenes import scoring_team
from star.world.simulate import simulate_match

CAMERA = Camera(x=0.0, y=50.0, z=-16.0, pan=0.0, tilt=0.3, focal=300.0, width=398, height=224).to_dict()


@pytest.fixture(scope="module")
def world():
    return section("world", {"games": {"train": 4, "valid": 1, "test": 1}, "video_fps": 5})


@pytest.fixture(scope="module")
def matches(world):
    """Six full-size games (300 s halves) with commentary."""
    out = []
    for planned in plan_games(world, 0):
        match = simulate_match(planned, world)
        commentate(match, planned.seed)
        out.append((planned, match))
    return out


def annotated(matches):
    for _, match in matches:
        for track in match.halves:
            for ev in track.events:
                if ev.label:
                    yield match, track, ev


def attack(track, team) -> int:
    return 1 if team == track.left_team else -1


def test_same_seed_same_labels_other_seed_other_labels(world):
    def labels(seed):
        planned = plan_games(world, seed)[0]
        match = simulate_match(planned, world)
        commentate(match, planned.seed)
        return json.dumps(synth.labels_json(match, planned))

    assert labels(0) == labels(0)
    assert labels(0) != labels(1)


def test_planned_score_is_reproduced_half_by_half(matches):
    tiny = section("world", {"games": {"train": 3, "valid": 3, "test": 3}, "half_duration_s": 60})
    for planned, match in [*matches, *((p, simulate_match(p, tiny)) for p in plan_games(tiny, 3))]:
        for track, goals in zip(match.halves, planned.goals, strict=True):
            scored = [scoring_team(ev) for ev in track.events]
            assert (scored.count(0), scored.count(1)) == goals
            assert all(0 <= ev.time < track.duration for ev in track.events)
        assert match.score == tuple(sum(g[t] for g in planned.goals) for t in (0, 1))


def test_annotations_are_spaced_and_follow_the_event_interval(matches, world):
    for _, match in matches:
        for track in match.halves:
            times = [ev.time for ev in track.events if ev.label]
            assert np.diff(times).min() >= 8.0 - 1e-6
            assert world["event_interval_s"] * 0.9 < track.duration / len(times) < world["event_interval_s"] * 1.5
    labels = {ev.label for *_, ev in annotated(matches)}
    assert labels <= set(CAPTION_LABELS)
    assert {"corner", "substitution", "whistle", "soccer-ball", "comments", "y-card"} <= labels


def test_captions_are_anonymized_and_identified_consistently(matches):
    for match, _, ev in annotated(matches):
        assert 10 <= len(ev.anonymized.split()) <= 40
        names = [p.name for p in match.people] + list(match.teams) + list(match.coaches)
        assert not any(name in ev.anonymized for name in names)
        slots = re.findall(r"\[(PLAYER|TEAM|REFEREE|COACH)\]", ev.anonymized)
        assert slots and "[" not in ev.identified
        # the same sentence: put the slots back where the names are
        pattern = re.escape(ev.anonymized)
        for slot in ("PLAYER", "TEAM", "REFEREE", "COACH"):
            pattern = pattern.replace(re.escape(f"[{slot}]"), "(.+?)")
        assert re.fullmatch(pattern, ev.identified)


def test_events_happen_where_the_ball_is(matches):
    for _, match in matches:
        for track in match.halves:
            for ev in track.events:
                if ev.kind in ("shot", "corner", "foul", "goal", "cross", "free_kick"):
                    ball = track.ball[int(ev.time * track.rate + 1e-6), :2]
                    assert np.hypot(*(ball - ev.xy)) < 1.0, ev


def test_captions_state_where_crosses_corners_and_shots_come_from(matches):
    checked = {"cross": 0, "corner": 0, "yards": 0}
    for _, track, ev in annotated(matches):
        cause = track.events[ev.cause] if ev.cause is not None else None
        if ev.kind in ("goal", "own_goal") and cause is not None and cause.kind == "cross":
            team = cause.team
            lateral = -attack(track, team) * cause.xy[1]
            side = "left" if lateral > 9 else "right" if lateral < -9 else "middle"
            assert re.search(rf"cross(es)? (from deep on )?(from )?the {side}|from (deep on )?the {side}",
                             ev.anonymized), (lateral, ev.anonymized)
            checked["cross"] += 1
        if ev.kind == "corner":
            lateral = -attack(track, ev.team) * ev.xy[1]
            assert abs(abs(ev.xy[0]) - HALF_L) < 1 and abs(lateral) > 30
            side = "left" if lateral > 0 else "right"
            assert f"from the {side}" in ev.anonymized or f"on the {side}" in ev.anonymized, ev.anonymized
            checked["corner"] += 1
        struck = ev.kind == "shot" or (ev.kind == "goal" and ev.detail["how"] in ("shot", "long_shot"))
        if struck and (found := re.search(r"from (\d+) yards", ev.anonymized)):
            yards = distance_to_goal(*ev.xy, attack(track, ev.team)) * 1.0936
            assert abs(int(found.group(1)) - yards) <= 2.5 + 1e-6, (yards, ev.anonymized)
            checked["yards"] += 1
        if ev.kind == "shot" and "from close range" in ev.anonymized:
            assert distance_to_goal(*ev.xy, attack(track, ev.team)) < 11
    assert min(checked.values()) > 0, checked


def test_captions_tell_what_happened_more_than_15_s_earlier(matches):
    seen = set()
    for match, track, ev in annotated(matches):
        chain, cause = [], ev.cause
        while cause is not None:
            chain.append(track.events[cause])
            cause = track.events[cause].cause
        if ev.kind == "corner":      # the corner's caption names the saved shot or the foul that started it
            first = chain[-1]
            assert first.kind in ("shot", "foul") and ev.time - first.time > 15
            assert ("free kick" in ev.anonymized) == (first.kind == "foul")
            seen.add(f"corner after {first.kind}")
        if ev.kind == "second_yellow":
            assert "second yellow" in ev.anonymized
            player = ev.players[0]
            before = [e for t in match.halves[: track.half] for e in t.events
                      if t.half < track.half or e.time < ev.time]
            assert any(e.kind == "yellow_card" and e.players[0] == player for e in before)
            seen.add("second yellow")
        if ev.kind == "substitution" and chain:
            assert chain[0].kind == "injury" and ev.time - chain[0].time > 15 and "injury" in ev.anonymized
            seen.add("substitution after injury")
        if ev.label == "soccer-ball":
            assert f"{ev.detail['score'][0]}-{ev.detail['score'][1]}" in ev.anonymized
            seen.add("score")
    assert {"corner after shot", "corner after foul", "score"} <= seen, seen


def test_world_records_what_each_caption_recalls(matches):
    """`recalls` (the diagnostics' long-range ground truth) agrees with the caption and the event chain."""
    kinds = set()
    for _, _track, ev in annotated(matches):
        recalls = ev.recalls
        if ev.kind in ("corner", "penalty", "second_yellow", "pressure") or "goalless" in ev.anonymized:
            assert recalls is not None, (ev.kind, ev.anonymized)
        if recalls is None:  # nothing from before its own chain: no score, no state of play
            assert not re.search(r"\d-\d|goalless", ev.anonymized), ev.anonymized
            continue
        kinds.add(recalls["what"])
        assert 0 <= recalls["since_s"] <= ev.time + 0.01  # rounded to 0.01 s
        if recalls["what"] == "score":
            assert re.search(r"\d-\d|goalless", ev.anonymized)
        if ev.kind == "corner":
            assert recalls["what"] == "cause" and recalls["since_s"] > 15
    assert {"score", "cause"} <= kinds, kinds


def test_substitutes_appear_and_leavers_disappear(matches):
    for _, match in matches:
        sent_off = 0
        for track in match.halves:
            sent_off += sum(ev.kind in ("second_yellow", "red_card") for ev in track.events)
            on = ~np.isnan(track.xy[..., 0])                                # [N, P]
            assert (on.sum(1) <= 23).all() and (on.sum(1) >= 23 - sent_off).all()
            assert on[0].sum() == 23 or track.half == 2
            for ev in track.events:
                if ev.kind == "substitution":
                    leaving, entering = ev.players
                    i = track.sample(ev.time)
                    assert not on[i + 2:, leaving].any() and on[i + 2: i + 50, entering].all()
                    assert not on[: max(i - 2, 0), entering].any()


def test_broadcast_covers_the_half_with_short_cuts(matches):
    for _, match in matches:
        for track in match.halves:
            shots = track.shots
            assert shots[0].start == 0 and shots[-1].end == track.duration
            assert all(a.end == b.start for a, b in zip(shots, shots[1:], strict=False))
            cuts = [s for s in shots if s.view != "main"]
            assert all(1.0 <= s.end - s.start <= 6.0 + 1e-9 for s in cuts)
            share = sum(s.end - s.start for s in cuts) / track.duration
            assert 0.08 < share < 0.3
            cues = {s.cue for s in cuts}
            if any(ev.kind == "goal" for ev in track.events):
                assert {"celebration", "goal_net"} <= cues and any(s.view == "replay" for s in cuts)


def test_labels_round_trip_through_the_reader(tmp_path, matches):
    planned, match = matches[0]
    path = tmp_path / "Labels-caption.json"
    path.write_text(json.dumps(synth.labels_json(match, planned)))
    labels = load_labels(path)
    expected = [ev for t in match.halves for ev in t.events if ev.label]
    assert [(a.half, a.seconds, a.label, a.anonymized) for a in labels.annotations] == \
        [(h.half, int(ev.time), ev.label, ev.anonymized) for h in match.halves for ev in h.events if ev.label]
    assert len(labels.annotations) == len(expected)
    assert labels.meta["UrlLocal"] == planned.path + "/"
    assert labels.meta["score"] == f"{match.score[0]} - {match.score[1]}"
    home = labels.meta["lineup"]["home"]["players"]
    assert sum(p["starting"] for p in home) == 11 and len(home) == 16


def test_gamestate_ground_truth_matches_the_tracks_and_the_camera(matches, world):
    planned, match = matches[0]
    track = match.halves[1]
    frames = round(track.duration * world["video_fps"])
    cameras = [None if 20 <= f < 40 else CAMERA for f in range(frames)]     # a 4 s cut at 4-8 s
    gs = synth.gamestate_json(match, track, cameras, world, planned, "2_224p.mkv")
    assert len(gs["images"]) == int(track.duration)
    assert len({im["image_id"] for im in gs["images"]}) == len(gs["images"])
    assert [im["has_labeled_camera"] for im in gs["images"][3:9]] == [True, False, False, False, False, True]
    camera = Camera(**CAMERA)
    by_image: dict[str, list] = {}
    for entry in gs["annotations"]:
        by_image.setdefault(entry["image_id"], []).append(entry)
    for k, image in enumerate(gs["images"]):
        balls = [e for e in by_image[image["image_id"]] if e["attributes"]["role"] == "ball"]
        entries = [e for e in by_image[image["image_id"]] if e["attributes"]["role"] != "ball"]
        ball = track.ball[track.sample(k)]
        assert len(balls) == int(not np.isnan(ball).any())      # the ball: its ground point, seen only on air
        for e in balls:
            assert np.allclose([e["bbox_pitch"]["x_bottom_middle"], e["bbox_pitch"]["y_bottom_middle"]], ball[:2],
                               atol=1e-3)
            assert image["has_labeled_camera"] or not e["visible"]
        xy = track.xy[track.sample(k)]
        assert len(entries) == int((~np.isnan(xy[:, 0])).sum())
        for e in entries:
            p = e["track_id"] - 1
            pitch = e["bbox_pitch"]
            assert np.allclose([pitch["x_bottom_middle"], pitch["y_bottom_middle"]], xy[p], atol=1e-3)
            person = match.people[p]
            assert e["attributes"]["role"] == person.role
            if person.team >= 0:
                assert e["attributes"]["team"] == ("left" if person.team == track.left_team else "right")
            assert ("bbox_image" in e) == e["visible"]
            if not image["has_labeled_camera"]:
                assert not e["visible"]
            elif e["visible"]:
                (u, v), = camera.project(xy[p][None].astype(float))[0]
                box = e["bbox_image"]
                if 5 < u < 393 and 0 < v < 224:    # not clipped at a side: the box stands on the feet
                    assert abs(box["x_center"] - u) < 0.6 and abs(box["y"] + box["h"] - v) < 0.6
    assert any(e["visible"] for e in gs["annotations"]) and not all(e["visible"] for e in gs["annotations"])


def fake_render(match, track, out_path, world, seed):
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(b"video")
    return [CAMERA] * round(track.duration * world["video_fps"])


def test_synthesize_writes_splits_skips_built_games_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "render_half", fake_render)
    tiny = section("world", {"games": {"train": 2, "valid": 1, "test": 1}, "half_duration_s": 60})
    games = plan_games(tiny, 5)
    built = synth.synthesize(tiny, 5, tmp_path, video_name="{half}_720p.mkv")
    assert built == sorted(g.path for g in games)
    for split in ("train", "valid", "test"):
        listed = (tmp_path / "splits" / f"{split}.txt").read_text().splitlines()
        assert listed == [g.path for g in games if g.split == split]
    game_dir = tmp_path / games[0].path
    assert (game_dir / "2_720p.mkv").is_file() and (game_dir / "1_camera.json").is_file()
    assert json.loads((game_dir / "1_camera.json").read_text())["frames"][0] == CAMERA
    load_labels(game_dir / "Labels-caption.json")
    assert synth.synthesize(tiny, 5, tmp_path, video_name="{half}_720p.mkv") == []          # all built
    (game_dir / "2_Labels-GameState.json").unlink()                                         # a crash
    assert synth.synthesize(tiny, 5, tmp_path, video_name="{half}_720p.mkv") == [games[0].path]
    assert len(synth.synthesize({**tiny, "crf": 30}, 5, tmp_path, "{half}_720p.mkv", only=[games[1].path])) == 1
    with pytest.raises(InputError, match="does not plan"):
        synth.synthesize(tiny, 5, tmp_path, only=["nowhere/game"])
    assert not list(tmp_path.rglob("*.tmp*"))


def test_star_world_renders_a_game_end_to_end(tmp_path):
    config = {"seed": 2, "world": {"games": {"train": 1, "valid": 1, "test": 1}, "half_duration_s": 60,
                                   "video_fps": 2, "width": 128, "height": 72}}
    games = plan_games(section("world", config["world"]), 2)
    assert star_main(["world", "--config", json.dumps(config), "--root", str(tmp_path), "--splits-only"]) == 0
    assert (tmp_path / "splits" / "test.txt").read_text() == games[2].path + "\n"
    assert star_main(["world", "--config", json.dumps(config), "--root", str(tmp_path),
                      "--only", games[0].path]) == 0
    game_dir = tmp_path / games[0].path
    with av.open(str(game_dir / "1_224p.mkv")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    cameras = json.loads((game_dir / "1_camera.json").read_text())["frames"]
    assert frames == len(cameras) == 120
    gs = json.loads((game_dir / "1_Labels-GameState.json").read_text())
    assert gs["images"][0]["width"] == 128 and len(gs["images"]) == 60
    assert not (tmp_path / games[1].path).exists()


def test_every_pairing_of_clubs_gets_kits_apart():
    """Larger worlds meet every fixture: each gets two shirts and two keeper colours, all different."""
    from star.world.plan import CLUBS, PlannedGame
    from star.world.squads import make_kits

    for home in range(len(CLUBS)):
        for away in range(len(CLUBS)):
            if home != away:
                kits = make_kits(PlannedGame("p", "train", 0, home, away, ((0, 0), (0, 0)), "", 0))
                colours = {kits[0].shirt, kits[1].shirt, kits[0].goalkeeper, kits[1].goalkeeper}
                assert len(colours) == 4, (home, away)
