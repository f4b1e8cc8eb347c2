"""Bad configs, game lists, feature files and videos refused up front; no spurious reruns; hard-kill leftovers
cleaned; one-line errors (issue 11, items 2 and 4-10; item 1 is tests/test_trust.py and test_caption.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from star import config as star_config
from star.cli import main
from star.config import ConfigError
from star.data.games import list_games
from star.data.soccernet import read_game_list
from star.provenance import atomic_path, module_closure, remove_stale_temporaries
from star.models import stage_module
from star.provenance import stage_code
from star.video.decode import VideoError, iter_frames
from tests.conftest import REPO, snakemake
from tests.videos import write_video


# ---- 2: every cross-key rule at config load, before any job ----------------------------------------------------

@pytest.mark.parametrize("override,needle", [
    ({"positions": {"fps": 5}}, "positions.fps (5) exceeds decode.fps (1)"),
    ({"decode": {"fps": 3}}, "decode.fps (3) exceeds world.video_fps (1)"),
    ({"features": {"encoders": ["pptimesformer", "baidu"]}}, "baidu are imported from SoccerNet's .npy files"),
    ({"tables": {"encoder": "resnet"}}, "tables.encoder (resnet) is not one of features.encoders"),
    ({"positions": {"backend": "sngamestate"}}, "positions.sngamestate.python and .repo is not set"),
])
def test_cross_key_rules_are_checked_when_the_config_is_loaded(override, needle):
    with pytest.raises(ConfigError, match=r"invalid configuration") as err:
        star_config.validate(override)
    assert needle in str(err.value)
    star_config.validate({"positions": {"fps": 2}, "decode": {"fps": 2}, "world": {"video_fps": 2}})  # accepted
    star_config.validate({"decode": {"fps": 3}, "dataset": {"source": "soccernet"}})   # a real video: any rate


def test_snakemake_stops_before_any_job_and_keeps_the_caches(tmp_path):
    from tests.conftest import TINY

    game = list_games(star_config.validate(TINY))[0].id
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "positions": {"fps": 5}}))
    cache = tmp_path / f"results/positions/classical/{game}/1.h5"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"a good cache")
    proc = snakemake(tmp_path, "--cores", "1", "--forcerun", "positions_localize", str(cache.relative_to(tmp_path)),
                     check=False)
    assert proc.returncode != 0 and "positions.fps (5) exceeds decode.fps (1)" in proc.stdout + proc.stderr
    assert cache.read_bytes() == b"a good cache"


# ---- 4: star doctor finds what star decode finds ---------------------------------------------------------------

def damaged_videos(tmp_path):
    """A truncated video and a bit-flipped one that `star decode` refuses (the flip is searched for: which byte
    breaks the stream depends on the encoder's output)."""
    video = write_video(tmp_path / "clean.mkv", [float(t) for t in range(31)])
    data = video.read_bytes()
    truncated = tmp_path / "truncated" / "1_224p.mkv"
    truncated.parent.mkdir()
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped" / "1_224p.mkv"
    flipped.parent.mkdir()
    for i in range(len(data) // 4, len(data), 37):
        damaged = bytearray(data)
        damaged[i] ^= 0x5A
        flipped.write_bytes(bytes(damaged))
        try:
            for _ in iter_frames(flipped, 1):
                pass
        except VideoError:
            break
    else:
        pytest.skip("no single-byte flip broke this encoder's stream")
    return truncated, flipped


def test_doctor_finds_the_truncated_and_bit_flipped_videos_decode_refuses(tmp_path, capsys):
    from tests.test_doctor import annotation, write_labels

    for video in damaged_videos(tmp_path):
        with pytest.raises(VideoError):
            for _ in iter_frames(video, 1):
                pass
        write_labels(video.parent, [annotation("1 - 00:05")])
        games = write_list(tmp_path, video.parent.name)
        code = main(["doctor", str(tmp_path), "--games", str(games)])
        out = capsys.readouterr().out
        assert code == 1 and f"PROBLEM  {video}" in out, out
        # the one-frame check it did before misses it
        assert main(["doctor", str(tmp_path), "--games", str(games), "--quick"]) == 0
        capsys.readouterr()


def write_list(folder, *games):
    path = folder / "list.txt"
    path.write_text("\n".join(games) + "\n")
    return path


# ---- 5: game paths that leave the data root ---------------------------------------------------------------------

@pytest.mark.parametrize("game", ["../outside/2015/game", "/abs/league/game", "league/../../x", "~/league/game",
                                  "league/./game"])
def test_game_paths_leaving_the_root_are_refused_with_file_and_line(tmp_path, game):
    games = write_list(tmp_path, "england_epl/2015-2016/a game", game)
    with pytest.raises(Exception, match=r"list.txt:2: game path .* must be relative"):
        read_game_list(games)
    cfg = star_config.validate({"dataset": {"source": "soccernet", "root": str(tmp_path),
                                            "splits": {"train": str(games)}}})
    with pytest.raises(Exception, match="must be relative"):
        list_games(cfg)


# ---- 6: feature checks that cannot be bypassed ------------------------------------------------------------------

def run_import(tmp_path, rows, *extra, encoder="baidu", fps=1, dim=16, dtype=np.float32):
    npy = tmp_path / "1.npy"
    np.save(npy, np.ones((rows, dim), dtype))
    return main(["features-import", "--npy", str(npy), "--encoder", encoder, "--game", "g", "--half", "1",
                 "--out", str(tmp_path / "out.h5"), "--config",
                 json.dumps({"file": "{half}.npy", "fps": fps, "dim": dim}), *extra])


def test_a_2fps_file_declared_1fps_is_refused_without_a_video(tmp_path, capsys):
    assert run_import(tmp_path, 2 * 2700) == 1   # a 45-min half at 2 fps, declared Baidu's 1 fps
    err = capsys.readouterr().err
    assert "cover 90.0 min, longer than any SoccerNet half" in err and "1.80-2.00 fps for a 45-50 min half" in err
    assert run_import(tmp_path, 2700) == 0        # the same half at the declared rate


def test_a_4fps_file_declared_2fps_is_an_error(tmp_path, capsys):
    assert run_import(tmp_path, 4 * 2800, encoder="resnet", fps=2) == 1
    assert "longer than any SoccerNet half" in capsys.readouterr().err
    assert not (tmp_path / "out.h5").exists()


def test_complex_arrays_and_a_nan_duration_are_refused(tmp_path, capsys):
    assert run_import(tmp_path, 10, "--duration", "10", dtype=np.complex64) == 1
    assert "expected real numbers, found dtype complex64" in capsys.readouterr().err
    for bad in ("nan", "inf", "-5"):
        assert run_import(tmp_path, 10, "--duration", bad) == 1
        assert "--duration must be a positive number of seconds" in capsys.readouterr().err


# ---- 7: a hard kill's leftovers ---------------------------------------------------------------------------------

def test_the_next_writer_removes_temporaries_a_killed_writer_left(tmp_path):
    out = tmp_path / "1.h5"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from star.provenance import HOST

    stale = tmp_path / f".1.h5.{HOST}-{dead.pid}.abc123.tmp"
    live = tmp_path / f".1.h5.{HOST}-{os.getppid()}.def456.tmp"        # a running process's: kept
    elsewhere = tmp_path / f".1.h5.otherhost-{dead.pid}.ghi789.tmp"     # another machine's: kept
    other_output = tmp_path / f".2.h5.{HOST}-{dead.pid}.jkl012.tmp"    # another output's: not this job's
    for path in (stale, live, elsewhere, other_output):
        path.write_bytes(b"partial")
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"whole")
    assert out.read_bytes() == b"whole" and not stale.exists()
    assert live.exists() and elsewhere.exists() and other_output.exists()
    assert remove_stale_temporaries(out) == []


def test_a_killed_runs_work_folder_is_removed_by_the_next_run(tmp_path):
    from star.provenance import HOST, work_dir

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".star-caption-{HOST}-{dead.pid}-x1"
    live = tmp_path / f".star-caption-{HOST}-{os.getppid()}-x2"
    for folder in (stale, live):
        (folder / "frames.h5").parent.mkdir()
        (folder / "frames.h5").write_bytes(b"partial")
    with work_dir(tmp_path, ".star-caption-") as tmp:
        assert os.path.isdir(tmp) and not stale.exists() and live.exists()
    assert not os.path.exists(tmp)


def test_the_recovery_commands_are_documented():
    text = (REPO / "docs/reliability.md").read_text()
    assert "--unlock" in text and "--rerun-incomplete" in text
    assert "docs/reliability.md" in (REPO / "README.md").read_text()


# ---- 8: no spurious reruns ------------------------------------------------------------------------------------------

def test_whole_floats_give_the_same_params_as_ints():
    one, one_float = (star_config.validate({"decode": {"fps": v}}) for v in (1, 1.0))
    assert star_config.to_json(one["decode"]) == star_config.to_json(one_float["decode"])
    assert star_config.to_json({"lr": 0.5, "xs": [2.0, 2.5]}) == '{"lr":0.5,"xs":[2,2.5]}'


def test_a_whole_float_in_the_config_reruns_nothing(tiny_world):
    from tests.test_workflow import planned_jobs

    floats = tiny_world / "floats.yaml"
    floats.write_text(yaml.safe_dump({"decode": {"fps": 1.0}, "positions": {"fps": 1.0, "max_players": 32.0}}))
    proc = snakemake(tiny_world, "-n", "data", "--configfile", "config.yaml", str(tiny_world / "tiny.yaml"),
                     str(floats))
    assert planned_jobs(proc) == {}


@pytest.mark.parametrize("method", ["sdvc", "delta", "star"])
def test_the_spotting_code_hash_leaves_out_the_caption_decoder(method):
    """An edit to the GPT-2 decoder or the tokenizers reruns the captioners, never a spotter (every method)."""
    spotting = set(module_closure("star.train.spotting")) | set(module_closure(stage_module(method, "spotting")))
    assert "star.models.decoder" not in spotting and "star.models.tokenizer" not in spotting
    captioning = set(module_closure(stage_module(method, "captioning"))) | set(module_closure("star.models.tokenizer"))
    assert "star.models.decoder" in captioning   # the captioning stage's hash does follow it
    assert stage_code("spotting", method) != stage_code("captioning", method)


# ---- 10: one-line errors --------------------------------------------------------------------------------------------

def test_evaluate_refuses_a_bad_confidence_level_before_starting_java(tmp_path, capsys):
    games = write_list(tmp_path, "a/b/c")
    assert main(["evaluate", str(tmp_path), str(tmp_path), "--games", str(games), "--ci", "1.5"]) == 1
    err = capsys.readouterr().err
    assert "--ci must be a confidence level between 0 and 1" in err and err.count("\n") == 1


def test_evaluate_prints_the_users_warnings_but_not_the_scorers_resource_warnings(tmp_path, capsys, monkeypatch):
    import warnings

    from star import evaluate as star_evaluate

    def fake_evaluate(*args, **kwargs):
        warnings.warn("unclosed file <_io.BufferedWriter name=5>", ResourceWarning, stacklevel=1)   # a scorer's pipe
        warnings.warn("1 prediction has a label outside the dictionary: goal", UserWarning, stacklevel=1)
        counts = dict.fromkeys(("games", "halves", "ground_truths", "predictions", "pairs",
                                "unmatched_predictions"), 0)
        return {"window": 30, "seed": 0, "counts": counts, "metrics": dict.fromkeys(star_evaluate.METRICS, 0.0)}

    monkeypatch.setattr(star_evaluate, "evaluate", fake_evaluate)
    assert main(["evaluate", str(tmp_path), str(tmp_path), "--games", str(write_list(tmp_path, "a/b/c"))]) == 0
    err = capsys.readouterr().err
    assert "outside the dictionary" in err and "ResourceWarning" not in err and "unclosed" not in err


def test_download_of_videos_without_a_terminal_or_password_is_one_line(tmp_path):
    pytest.importorskip("SoccerNet")
    env = {k: v for k, v in os.environ.items() if k != "SOCCERNET_PASSWORD"}
    proc = subprocess.run([sys.executable, "-m", "star", "download", str(tmp_path), "--what", "videos"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, start_new_session=True,
                          cwd=REPO)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "videos need the SoccerNet NDA password" in proc.stderr


def test_malformed_json_and_yaml_configs_name_the_problem_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("decode: {fps: 1\n")
    for value, needle in (('{"decode": {', "inline JSON config is malformed"), (str(bad), f"config file {bad} is "
                                                                                         "not valid YAML")):
        assert main(["spotting-infer", "--model", str(tmp_path / "m.safetensors"), "--features", "f.h5",
                     "--out", str(tmp_path / "o.json"), "--config", value]) == 1
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
