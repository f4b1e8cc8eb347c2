"""No code from data files: planted malicious pickles under every weight file name a workflow stage reads are
refused without running (the marker file never appears); and caches are byte-identical across builds."""

import json
import pickle
import time

import numpy as np
import pytest
import torch

from star.cli import main
from star.data.cache import write_cache
from star.features.pdparams import UnsafeWeightsError, read_pdparams
from star.provenance import record
from star.train.loop import read_checkpoint


class Evil:
    """Unpickling this runs `exec`, which writes the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def plant(path, marker, how="pickle"):
    """A malicious file at `path`: a plain pickle (what a .pdparams is) or torch's zip format (a .pt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"backbone.cls_token": Evil(marker), "model.weight": Evil(marker)}
    if how == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


@pytest.fixture
def marker(tmp_path):
    yield tmp_path / "MARKER"
    assert not (tmp_path / "MARKER").exists(), "a planted pickle ran code"


def test_the_planted_pickle_does_run_code_when_unpickled_plainly(tmp_path):
    """The fixture is real: an ordinary unpickler runs it."""
    flag = tmp_path / "flag"
    pickle.loads(plant(tmp_path / "x.pdparams", flag).read_bytes())
    assert flag.read_text() == "ran"


@pytest.mark.parametrize("name", ["encoder.pdparams", "weights.pdparams", "encoder.safetensors"])
@pytest.mark.parametrize("how", ["pickle", "torch"])
def test_encoder_weights_that_would_run_code_are_refused(tmp_path, marker, capsys, name, how):
    weights = plant(tmp_path / name, marker, how)
    frames = tmp_path / "frames.h5"   # never reached: the weights are read first
    assert main(["features-extract", "--frames", str(frames), "--out", str(tmp_path / "f.h5"),
                 "--weights", str(weights), "--config", json.dumps({"preset": "tiny"}), "--threads", "1"]) == 1
    err = capsys.readouterr().err
    assert name in err and err.count("\n") == 1


def test_the_restricted_unpickler_names_what_it_refused_and_reads_real_arrays(tmp_path, marker):
    with pytest.raises(UnsafeWeightsError, match="refused to load builtins.exec"):
        read_pdparams(plant(tmp_path / "a.pdparams", marker))
    objects = tmp_path / "objects.pdparams"
    objects.write_bytes(pickle.dumps({"w": np.array([1, "x"], dtype=object)}))
    with pytest.raises(UnsafeWeightsError):   # object arrays need globals beyond numpy's: refused too
        read_pdparams(objects)
    good = tmp_path / "good.pdparams"
    good.write_bytes(pickle.dumps({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": [1, 2.0, "x"]},
                                  protocol=2))
    assert read_pdparams(good)["w"].shape == (2, 3)


@pytest.mark.parametrize("stage", ["spotting", "captioning"])
@pytest.mark.parametrize("name,how", [("model.safetensors", "torch"), ("model.safetensors", "pickle"),
                                      ("model.pt", "torch"), ("spotting.pt", "pickle")])
def test_inference_stages_refuse_a_pickled_model(tmp_path, marker, capsys, stage, name, how):
    model = plant(tmp_path / name, marker, how)
    args = ["--model", str(model), "--out", str(tmp_path / "out.json"), "--features", str(tmp_path / "f.h5")]
    if stage == "captioning":
        args = ["--model", str(model), "--out", str(tmp_path / "out.json"), "--features", str(tmp_path),
                "--game-path", "a/b/c", "--labels", str(tmp_path / "Labels-caption.json")]
    assert main([f"{stage}-infer", *args]) == 1
    err = capsys.readouterr().err
    assert name in err and "safetensors" in err and err.count("\n") == 1


def test_a_planted_resume_checkpoint_is_ignored_without_running(tmp_path, marker, capsys):
    assert read_checkpoint(plant(tmp_path / "model.safetensors.ckpt", marker, "torch")) is None
    assert read_checkpoint(plant(tmp_path / "other.ckpt", marker, "pickle")) is None
    assert "starting afresh" in capsys.readouterr().out


def test_caches_carry_no_clock_time_and_two_builds_give_the_same_bytes(tmp_path):
    arrays = {"features": np.random.default_rng(0).random((130, 8), dtype=np.float32)}
    provenance = record("features-import", {"fps": 1}, "abc")
    assert not any("time" in k or "created" in k for k in provenance)
    write_cache(tmp_path / "a.h5", "features", arrays, provenance, game="g", half=1, fps=1.0, dim=8, encoder="x")
    time.sleep(1.1)   # HDF5 stamps objects in whole seconds unless told not to
    write_cache(tmp_path / "b.h5", "features", arrays, record("features-import", {"fps": 1}, "abc"), game="g",
                half=1, fps=1.0, dim=8, encoder="x")
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
