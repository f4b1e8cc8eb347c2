import json
import re
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from star import config
from star.cli import main as star_main
from star.data.cache import ROLES, cache_attrs, open_cache, write_cache
from star.errors import InputError
from star.positions.classical import ball, blobs, calibration, search, tracker
from star.positions.evaluate import Tally, main_camera_samples, score_half
from star.positions.gamestate_json import GameStateError, GameStateFrames, read_gamestate, resample
from star.positions.backends import HalfSource, get_localizer
from star.positions.sngamestate import SEQUENCE, SnGameStateError
from star.provenance import sha256_file
from star.geometry import pitch
from star.geometry.camera import Camera
from tests.videos import write_video

W, H = 398, 224
RIG = (1.0, 46.0, -15.0)
SHIRTS = ((230, 40, 40), (40, 80, 230))      # team 0 (left), team 1


def broadcast_camera(aim, coverage) -> Camera:
    theta = search.looking_at(np.array(RIG), np.array([aim], float), np.array([coverage], float), W)[0]
    return calibration.to_camera(theta, RIG, (W, H))


def draw_frame(camera: Camera, people=()) -> np.ndarray:
    """A broadcast-like frame: striped grass around the pitch, white lines, a crowd beyond, figures standing
    at (x, y, shirt RGB)."""
    uv = np.stack(np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5), -1).reshape(-1, 2)
    ground = camera.to_pitch(uv).reshape(H, W, 2)
    with np.errstate(invalid="ignore"):
        grass = pitch.on_pitch(ground[..., 0], ground[..., 1], 5.0)
        stripe = np.floor(ground[..., 0] / 5.25) % 2 == 0
    rng = np.random.default_rng(0)
    img = rng.integers(30, 200, (H // 4 + 1, W // 4 + 1, 3)).repeat(4, 0).repeat(4, 1)[:H, :W].astype(np.uint8)
    img[grass] = (52, 118, 48)
    img[grass & stripe] = (68, 138, 58)
    im = Image.fromarray(img)
    canvas = ImageDraw.Draw(im)
    for line in pitch.line_polylines(step=0.5).values():
        points, depth = camera.project(line)
        canvas.line([tuple(p) for p in points[depth > 1]], fill=(240, 240, 236), width=1)
    for x, y, shirt in sorted(people, key=lambda p: p[1]):
        (fu, fv), (_, hv) = camera.project(np.array([[x, y, 0.0], [x, y, -1.8]]))[0]
        h = fv - hv
        canvas.rectangle([fu - 0.14 * h, hv + 0.17 * h, fu + 0.14 * h - 1, fv - 0.5 * h - 1], fill=shirt)
        canvas.rectangle([fu - 0.11 * h, fv - 0.5 * h, fu + 0.11 * h - 1, fv - 1], fill=(20, 20, 30))
        canvas.ellipse([fu - 0.06 * h, hv, fu + 0.06 * h, hv + 0.17 * h], fill=(220, 180, 150))
    return np.asarray(im)


def ground_error(truth: Camera, fitted: Camera) -> float:
    """Median distance (m) between where the two cameras see the visible pitch."""
    uv = np.stack(np.meshgrid(np.linspace(0, W, 20), np.linspace(0, H, 12)), -1).reshape(-1, 2)
    a, b = truth.to_pitch(uv), fitted.to_pitch(uv)
    on = np.isfinite(a).all(1) & pitch.on_pitch(np.nan_to_num(a[:, 0]), np.nan_to_num(a[:, 1]))
    return float(np.median(np.linalg.norm(a[on] - b[on], axis=1)))


def new_tracker() -> tracker.HalfTracker:
    settings = config.section("positions", {"classical": {"rig": list(RIG)}})["classical"]
    return tracker.HalfTracker(settings, (W, H), fps=1.0)


# ---------------------------------------------------------------- classical backend


@pytest.mark.parametrize("aim, coverage", [((-30.0, -5.0), 45.0), ((38.0, 10.0), 30.0)])
def test_camera_search_recovers_a_known_camera(aim, coverage):
    truth = broadcast_camera(aim, coverage)
    tr = new_tracker()
    fit = tr.calibrate(calibration.Observation.from_frame(draw_frame(truth)))
    assert fit is not None
    assert ground_error(truth, calibration.to_camera(fit.theta, tr.rig, (W, H))) < 0.15


def test_tracking_follows_a_panning_camera_and_keeps_its_side():
    tr = new_tracker()
    errors = []
    for x in (20.0, 26.0, 33.0, 40.0):             # the camera pans right over four seconds
        truth = broadcast_camera((x, 0.0), 40.0)
        fit = tr.calibrate(calibration.Observation.from_frame(draw_frame(truth)))
        errors.append(ground_error(truth, calibration.to_camera(fit.theta, tr.rig, (W, H))))
        assert fit.theta[0] > 0                    # never the mirrored view of the left half
    assert max(errors) < 0.15


def test_frames_without_lines_are_not_calibrated():
    tr = new_tracker()
    crowd = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
    grass_only = np.zeros((H, W, 3), np.uint8)
    grass_only[:] = (52, 118, 48)
    grass_only[60:180, 150:260] = (240, 240, 240)  # a close-up's white shirt is no pitch line
    for frame in (crowd, grass_only):
        assert tr.calibrate(calibration.Observation.from_frame(frame)) is None


def test_blobs_stand_where_the_people_are():
    camera = broadcast_camera((0.0, 0.0), 40.0)
    people = [(-12.0, -8.0, SHIRTS[0]), (-3.0, 6.0, SHIRTS[1]), (5.0, -2.0, SHIRTS[0]), (12.0, 9.0, SHIRTS[1])]
    frame = draw_frame(camera, people)
    found_blobs = blobs.find_blobs(frame, calibration.Observation.from_frame(frame), camera)
    found = camera.to_pitch(np.stack([b.foot_uv for b in found_blobs]))
    assert len(found) == len(people)
    for x, y, shirt in people:
        nearest = np.argmin(np.linalg.norm(found - (x, y), axis=1))
        assert np.linalg.norm(found[nearest] - (x, y)) < 0.5
        assert np.abs(found_blobs[nearest].colour - shirt).max() < 40


def draw_ball(frame: np.ndarray, camera: Camera, x: float, y: float) -> np.ndarray:
    """A ball on the grass at (x, y) as the renderer draws one: its dark shadow, the white ball just above."""
    im = Image.fromarray(frame.copy())
    canvas = ImageDraw.Draw(im)
    (su, sv), (bu, bv) = camera.project(np.array([[x, y, 0.0], [x, y, -0.22]]))[0]
    canvas.ellipse((su - 2, sv - 0.8, su + 2, sv + 0.8), fill=(30, 70, 30))
    canvas.ellipse((bu - 1.2, bv - 1.2, bu + 1.2, bv + 1.2), fill=(250, 250, 250))
    return np.asarray(im)


def test_the_ball_is_found_by_its_shadow():
    camera = broadcast_camera((0.0, 0.0), 40.0)
    near = blobs.near_pitch(camera, (W, H))
    # dark shorts on a white line are no ball: the frame without one gives none
    people = [(-5.0, 0.0, (20, 30, 60)), (6.0, -3.0, SHIRTS[1])]
    plain = draw_frame(camera, people)
    assert ball.find_ball(plain, camera, near) is None
    found = ball.find_ball(draw_ball(plain, camera, 3.0, 4.0), camera, near)
    assert found is not None and np.linalg.norm(found - (3.0, 4.0)) < 0.5


def test_teams_and_roles_from_colours_and_sides():
    rng = np.random.default_rng(0)
    n = 60
    xy = np.concatenate([rng.normal(-15, 8, (n, 2)), rng.normal(15, 8, (n, 2)), [[-48, 0]] * 8, [[47, 2]] * 8,
                         rng.normal(0, 5, (10, 2))])
    colours = np.concatenate([[SHIRTS[0]] * n, [SHIRTS[1]] * n, [(250, 120, 200)] * 8, [(0, 190, 200)] * 8,
                              [(20, 20, 20)] * 10]).astype(float) + rng.normal(0, 3, (2 * n + 26, 3))
    team, role = blobs.assign_teams(xy, colours)
    assert (team[:n] == 0).all() and (team[n:2 * n] == 1).all()
    assert (role[2 * n:2 * n + 16] == ROLES.index("goalkeeper")).all()
    assert (team[2 * n:2 * n + 8] == 0).all() and (team[2 * n + 8:2 * n + 16] == 1).all()
    assert (role[-10:] == ROLES.index("referee")).all() and (team[-10:] == -1).all()


def test_classical_backend_writes_a_positions_cache(tmp_path):
    cameras = [broadcast_camera((-20.0, 0.0), 45.0), broadcast_camera((-14.0, 2.0), 45.0), None,
               broadcast_camera((25.0, -3.0), 40.0)]
    people = [(-20.0, 5.0, SHIRTS[0]), (-25.0, -6.0, SHIRTS[1]), (-10.0, 0.0, SHIRTS[0]), (24.0, 0.0, SHIRTS[1])]
    crowd = np.random.default_rng(2).integers(0, 255, (H, W, 3), dtype=np.uint8)
    frames = np.stack([draw_frame(c, people) if c else crowd for c in cameras])
    frames_path = write_cache(tmp_path / "frames.h5", "frames", {"frames": frames, "times": np.arange(4.0)}, {},
                              game="g", half=1, fps=1.0, width=W, height=H, source="test")
    out = tmp_path / "positions.h5"
    positions_config = json.dumps({"classical": {"rig": list(RIG), "rig_frames": 3}, "max_players": 3})
    assert star_main(["positions-localize", "--game", "g", "--half", "1", "--frames", str(frames_path),
                      "--out", str(out), "--config", positions_config]) == 0
    attrs = cache_attrs(out)
    assert (attrs["backend"], attrs["max_players"], attrs["fps"], attrs["length"]) == ("classical", 3, 1.0, 4)
    with open_cache(out, "positions", fps=1.0) as h5:
        calibrated, mask, xy = h5["calibrated"][:], h5["mask"][:], h5["xy"][:]
    assert calibrated.tolist() == [True, True, False, True]
    assert not mask[2].any() and mask[0].sum() == 3            # three slots, three people in view
    in_view = sorted(x for x, _, _ in people[:3])
    assert np.abs(np.sort(xy[0, :, 0]) - in_view).max() < 0.5


# ---------------------------------------------------------------- Game State JSON


def person(image_id, x, y, role="player", team="left", **extra):
    return {"image_id": image_id, "track_id": 1, "attributes": {"role": role, "team": team, "jersey": "7"},
            "bbox_pitch": {"x_bottom_middle": x, "y_bottom_middle": y}, **extra}


def labels_file(path, annotations):
    images = [{"image_id": f"1000{k + 1:06d}", "file_name": f"{k + 1:06d}.jpg", "has_labeled_camera": k != 2}
              for k in range(4)]
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": annotations}))
    return path


def test_reads_a_labels_file_resampled_to_the_positions_rate(tmp_path):
    path = labels_file(tmp_path / "1_Labels-GameState.json", [
        person("1000000001", 10.0, 5.0), person("1000000001", -3.0, 2.0, "goalkeeper", "right"),
        person("1000000001", 0.0, 0.0, "ball", None), person("1000000001", 30.0, 0.0, visible=False),
        person("1000000003", 1.0, 1.0, "referee", None),      # an image without camera: a cut
        person("1000000004", -7.5, 3.0, "referee", None),
    ])
    out = resample(read_gamestate(path), source_fps=1.0, fps=0.5, max_players=4)
    assert out.calibrated.tolist() == [True, False]           # samples at 0 s and 2 s (a cut)
    assert out.mask[0].sum() == 2 and not out.mask[1].any()
    slots = out.mask[0]
    got = {tuple(xy): (t, r) for xy, t, r in zip(out.xy[0][slots].tolist(), out.team[0][slots], out.role[0][slots],
                                                 strict=True)}
    assert got == {(10.0, 5.0): (0, ROLES.index("player")), (-3.0, 2.0): (1, ROLES.index("goalkeeper"))}
    assert out.jersey[0][slots].tolist() == [7, 7]
    assert out.ball_visible.tolist() == [True, False] and out.ball[0].tolist() == [0.0, 0.0]
    full = resample(read_gamestate(path), 1.0, 1.0, 4)
    assert len(full) == 4 and full.calibrated.tolist() == [True, True, False, True]
    assert full.role[3, 0] == ROLES.index("referee") and full.team[3, 0] == -1


def test_reads_predictions_with_soccernet_image_ids(tmp_path):
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps({"predictions": [
        person("3060000001", 1.0, 2.0), person("3060000003", 4.0, -2.0, team="right"),
        {"image_id": "3060000002", "supercategory": "camera", "category_id": 6},
    ]}))
    out = resample(read_gamestate(path), 1.0, 1.0, max_players=2)
    assert out.calibrated.tolist() == [True, True, True] and out.mask.sum(1).tolist() == [1, 0, 1]
    assert out.xy[2, 0].tolist() == [4.0, -2.0] and out.team[2, 0] == 1


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"predictions": [{"image_id": "5", "attributes": {"role": "player", "team": "left"}}]}),
     "predictions[0]: lacks 'bbox_pitch'"),
    (json.dumps({"predictions": [person("5", 1.0, 1.0, team="home")]}), "predictions[0]: team 'home'"),
    (json.dumps({"images": [], "annotations": [person("9", 1.0, 1.0)]}), "annotations[0]: image_id '9' is not in"),
    (json.dumps({"frames": []}), "expected a 'predictions' list"),
])
def test_malformed_game_state_json_names_file_and_entry(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(GameStateError, match=re.escape(message)) as caught:
        read_gamestate(path)
    assert str(path) in str(caught.value)


# ---------------------------------------------------------------- sn-gamestate


STAND_IN = """#!{python}
# Stands in for the sn-gamestate interpreter: records its command line, checks the staged frames and writes a
# predictions JSON where tracklab would, one player per frame at x = frame index.
import json, sys
from pathlib import Path
args = dict(a.split("=", 1) for a in sys.argv[5:] if "=" in a)
frames = sorted((Path(args["dataset.dataset_path"]) / "challenge" / "{sequence}" / "img1").glob("*.jpg"))
Path(sys.argv[0]).with_name("call.json").write_text(json.dumps({{"argv": sys.argv, "cwd": str(Path.cwd()),
                                                                  "frames": [f.name for f in frames]}}))
out = Path(args["hydra.run.dir"]) / "eval" / "pred" / "SoccerNetGS-challenge" / "tracklab" / "{sequence}.json"
out.parent.mkdir(parents=True)
predictions = [{{"image_id": str(10000 + k), "track_id": 1, "attributes": {{"role": "player", "team": "right"}},
                "bbox_pitch": {{"x_bottom_middle": float(k), "y_bottom_middle": 0.0}}}} for k in range(len(frames))]
out.write_text(json.dumps({{"predictions": predictions}}))
"""


def stand_in(tmp_path):
    script = tmp_path / "env" / "python"
    script.parent.mkdir()
    script.write_text(STAND_IN.format(python=sys.executable, sequence=SEQUENCE))
    script.chmod(0o755)
    repo = tmp_path / "sn-gamestate"
    (repo / "pretrained_models").mkdir(parents=True)
    (repo / "pretrained_models" / "yolo.pt").write_bytes(b"w")
    return script, repo


def test_sngamestate_runs_tracklab_on_staged_frames(tmp_path):
    script, repo = stand_in(tmp_path)
    video = write_video(tmp_path / "1_224p.mkv", [k / 25 for k in range(25 * 3)])      # 3 s
    cfg = config.section("positions", {"backend": "sngamestate", "sngamestate": {
        "python": str(script), "repo": str(repo), "weights": ["pretrained_models/yolo.pt"],
        "extra_args": ["modules.team.cfg.x=1"]}})
    out = get_localizer(cfg).localize(HalfSource("g", 1, video=video, work_dir=tmp_path / "work"))
    call = json.loads((script.parent / "call.json").read_text())
    argv = call["argv"]
    assert argv[1:5] == ["-m", "tracklab.main", "-cn", "soccernet"] and call["cwd"] == str(repo)
    assert f"dataset.dataset_path={tmp_path / 'work' / 'SoccerNetGS'}" in argv
    assert f"hydra.run.dir={tmp_path / 'work' / 'run'}" in argv and "dataset.eval_set=challenge" in argv
    assert argv[-1] == "modules.team.cfg.x=1"
    assert call["frames"] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert out.calibrated.tolist() == [True] * 3 and out.xy[:, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert (out.team[:, 0] == 1).all()


def test_sngamestate_lists_missing_weights_before_launching(tmp_path):
    script, repo = stand_in(tmp_path)
    cfg = config.section("positions", {"backend": "sngamestate", "sngamestate": {
        "python": str(script), "repo": str(repo),
        "weights": ["pretrained_models/yolo.pt", "pretrained_models/prtreid.pth", "/nowhere/calib.pt"]}})
    with pytest.raises(SnGameStateError) as caught:
        get_localizer(cfg).localize(HalfSource("g", 1, video=tmp_path / "none.mkv", work_dir=tmp_path))
    message = str(caught.value)
    assert str(repo / "pretrained_models" / "prtreid.pth") in message and "/nowhere/calib.pt" in message
    assert "yolo.pt" not in message and f"looked for in {repo}" in message
    assert not (script.parent / "call.json").exists()
    assert isinstance(caught.value, InputError)


# ---------------------------------------------------------------- evaluation


def test_evaluation_counts_a_constructed_half():
    truth = read_gamestate_from({0: [(0, 0, 0, 0, 7), (10, 0, 1, 1, 9), (20, 5, -1, 2, -1)], 1: [(0, 0, 0, 0, 7)],
                                 2: [(5, 5, 1, 1, 1)], 3: [(1, 1, 0, 0, 7)]},
                                balls={0: (3.0, 4.0, 1.0), 1: (0.0, 0.0, 1.0), 2: (-20.0, 0.0, 1.0)})
    arrays = {"calibrated": np.array([True, False, True, True]), "xy": np.zeros((4, 3, 2)),
              "team": np.full((4, 3), -1), "role": np.zeros((4, 3)), "mask": np.zeros((4, 3), bool),
              "ball": np.zeros((4, 2)), "ball_visible": np.zeros(4, bool)}
    arrays["xy"][0, :3] = [(0.5, 0), (10, 1.5), (30, 0)]       # 0.5 m and 1.5 m off, one false
    arrays["team"][0, :3] = [0, 0, 1]                          # the second is on the wrong team
    arrays["ball"][[0, 2]] = [(3.5, 4.0), (0.0, 0.0)]         # 0.5 m off; 20 m off (wrong)
    arrays["ball_visible"][[0, 2]] = True
    arrays["mask"][0, :3] = True
    arrays["xy"][2, 0] = (5, 8)                                # 3 m off: only the wide gate matches
    arrays["mask"][2, 0] = True
    main = np.array([True, True, True, False])                 # the last sample is a cut, calibrated anyway
    report = score_half(arrays, 1.0, truth, 1.0, main).report()
    assert report["main_calibrated_share"] == round(2 / 3, 4) and report["false_calibrations"] == 1
    assert (report["people_truth"], report["people_predicted"], report["people_matched"]) == (5, 4, 2)
    assert report["recall"] == 0.4 and report["recall_calibrated"] == 0.5 and report["precision"] == 0.5
    assert report["median_error_m"] == 1.0 and report["median_error_m_gate5"] == 1.5
    assert report["team_accuracy"] == 0.5
    assert report["role_accuracy"] == 0.5                      # the second is a goalkeeper, called a player
    assert (report["ball_truth"], report["ball_predicted"], report["ball_recall"]) == (3, 2, round(1 / 3, 4))
    assert report["ball_precision"] == 0.5 and report["ball_median_error_m"] == 0.5
    pooled = Tally()
    pooled.add(score_half(arrays, 1.0, truth, 1.0, main))
    pooled.add(score_half(arrays, 1.0, truth, 1.0, main))
    assert pooled.report()["people_matched"] == 4 and pooled.report()["recall"] == 0.4


def read_gamestate_from(people: dict, balls: dict | None = None):
    return GameStateFrames({k: [tuple(map(float, p)) for p in v] for k, v in people.items()}, set(people), 3,
                           balls or {})


def test_main_camera_samples_follow_the_camera_file(tmp_path):
    path = tmp_path / "1_camera.json"
    path.write_text(json.dumps({"fps": 5, "frames": [{"pan": 0}] * 5 + [None] * 5 + [{"pan": 0}] * 3}))
    assert main_camera_samples(path, 3, 1.0).tolist() == [True, False, True]
    with pytest.raises(InputError, match="camera file does not exist"):
        main_camera_samples(tmp_path / "2_camera.json", 3, 1.0)


def test_localize_and_evaluate_commands_on_game_state_json(tmp_path):
    game = tmp_path / "game"
    game.mkdir()
    labels_file(game / "1_Labels-GameState.json", [person("1000000001", 10.0, 5.0), person("1000000004", 1.0, 2.0)])
    (game / "1_camera.json").write_text(json.dumps({"fps": 1, "frames": [{}, {}, None, {}]}))
    out = tmp_path / "positions.h5"
    backend = json.dumps({"backend": "gamestate_json"})
    assert star_main(["positions-localize", "--game", "g1", "--half", "1", "--game-dir", str(game),
                      "--out", str(out), "--config", backend]) == 0
    truth = game / "1_Labels-GameState.json"
    assert cache_attrs(out)["provenance"]["sources"] == {str(truth): sha256_file(truth)}
    report_path = tmp_path / "report.json"
    assert star_main(["positions-evaluate", "--positions", str(out), "--game-dir", str(game),
                      "--out", str(report_path)]) == 0
    overall = json.loads(report_path.read_text())["overall"]
    assert overall["recall"] == 1.0 and overall["precision"] == 1.0 and overall["median_error_m"] == 0.0
    assert overall["main_calibrated_share"] == 1.0 and overall["false_calibrations"] == 0
