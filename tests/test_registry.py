"""The registries (star/registry.py) are the one list of methods, encoders and datasets: the schema's choices, the
workflow's wildcards and the CLI's choices come from them, and a method from outside the package is one module plus
one registration (tests/toy_method.py) that trains, infers and plans through the workflow."""

import dataclasses
import importlib
import json
import os
import subprocess
import sys

import pytest
import yaml

from star import config as star_config
from star import registry
from star.cli import main
from star.data.predictions import load_predictions
from tests.caches import write_store
from tests.conftest import REPO, TINY, snakemake
from tests.test_workflow import planned_jobs


def test_schema_choices_are_the_registries():
    props = star_config.schema()["properties"]
    assert props["methods"]["items"]["enum"] == list(registry.METHODS)
    assert {"sdvc", "delta", "star"} <= set(registry.METHODS)
    features = props["features"]["properties"]
    assert features["encoders"]["items"]["enum"] == list(registry.ENCODERS)
    assert props["dataset"]["properties"]["source"]["enum"] == ["synthetic", "soccernet"]
    cfg = star_config.validate({})
    for name, entry in registry.ENCODERS.items():
        if entry.kind == "imported":
            assert cfg["features"]["import"][name] == {"file": entry.file, "fps": entry.fps, "dim": entry.dim,
                                                       "tolerance_s": 10}
    assert set(cfg["features"]["import"]) == set(registry.imported_encoders())
    with pytest.raises(star_config.ConfigError, match="methods.0: 'pdvcx' is not one of"):
        star_config.validate({"methods": ["pdvcx"]})
    with pytest.raises(star_config.ConfigError, match=r"dataset.halves.0: 3 is not one of \[1, 2\]"):
        star_config.validate({"dataset": {"halves": [3]}})


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test are undone after it (and the schema rebuilt)."""
    for table in ("METHODS", "ENCODERS", "DATASETS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    star_config.schema.cache_clear()
    yield registry
    star_config.schema.cache_clear()


def test_an_imported_encoder_is_one_registration(scratch_registry):
    scratch_registry.register_encoder(registry.Encoder("swin", "Swin", "imported", dim=768, fps=2,
                                                       file="{half}_swin.npy"))
    cfg = star_config.validate({"dataset": {"source": "soccernet"}, "features": {"encoders": ["swin"]}})
    assert cfg["features"]["import"]["swin"]["dim"] == 768
    with pytest.raises(star_config.ConfigError, match="swin are imported from SoccerNet's .npy files"):
        star_config.validate({"features": {"encoders": ["swin"]}})   # the synthetic world has no .npy files
    with pytest.raises(ValueError, match="needs dim, fps and file"):
        registry.Encoder("bad", "Bad", "imported", dim=3)


def test_a_registration_reruns_only_what_it_changes(scratch_registry):
    """The registry is not in any code hash (every stage reads it): a new method leaves the other stages' hashes
    alone, while a method's own entry is in its stages' hashes."""
    from star.provenance import code_hash, module_closure, stage_code

    assert "star.registry" not in module_closure("star.video.decode") + module_closure("star.train.spotting")
    before = code_hash("star.video.decode"), stage_code("spotting", "sdvc"), stage_code("captioning", "star")
    scratch_registry.register_method(registry.Method("other", "Other", "two_stage", "a:C", spotter="a:S",
                                                     captioner="a:D"))
    assert (code_hash("star.video.decode"), stage_code("spotting", "sdvc"), stage_code("captioning", "star")) == before
    scratch_registry.register_method(dataclasses.replace(registry.method("sdvc"), selection="max_class"))
    assert stage_code("spotting", "sdvc") != before[1]


def test_a_method_of_unknown_kind_or_missing_models_is_refused():
    with pytest.raises(ValueError, match="kind 'joint'"):
        registry.Method("m", "M", "joint", "a:B", spotter="a:S", captioner="a:C")
    with pytest.raises(ValueError, match="a dense method needs model"):
        registry.Method("m", "M", "dense", "a:B")


def test_a_toy_method_trains_and_infers_through_every_stage(scratch_registry, tmp_path):
    sys.modules.pop("tests.toy_method", None)
    importlib.import_module("tests.toy_method")   # its registration goes into this test's scratch tables
    assert registry.method("toy").captioner == "tests.toy_method:ToyCaptioner"
    store = write_store(tmp_path / "store")
    fast = {"steps": 4, "batch_size": 8, "eval_every": 2, "checkpoint_every": 2, "warmup_steps": 1}
    cfg = json.dumps({"spotting": {"train": fast}, "captioning": {"train": fast, "beam_size": 1, "max_tokens": 8}})
    common = ["--method", "toy", "--manifest", str(store["manifest"]), "--labels-root", str(store["labels_root"]),
              "--features", str(store["features"]), "--config", cfg]
    for stage in ("spotting", "captioning"):
        assert main([f"{stage}-train", *common, "--out", str(tmp_path / f"{stage}.safetensors")]) == 0
    test = store["games"][2]
    features = [str(store["features"] / test.id / f"{h}.h5") for h in (1, 2)]
    spots = [str(tmp_path / f"spots{h}.json") for h in (1, 2)]
    for h in (0, 1):
        assert main(["spotting-infer", "--model", str(tmp_path / "spotting.safetensors"), "--features", features[h],
                     "--out", spots[h], "--config", cfg]) == 0
    out = tmp_path / "pred" / test.path / "results_dense_captioning.json"
    assert main(["captioning-infer", "--model", str(tmp_path / "captioning.safetensors"), "--game-path", test.path,
                 "--features", *features, "--spots", *spots, "--out", str(out), "--config", cfg]) == 0
    predictions, outside = load_predictions(out)
    assert not outside and all(predictions[h] for h in (1, 2))


def test_a_toy_method_plans_through_the_workflow(tmp_path):
    """A dry run of Table 1 with only the toy method: its spotter and captioner are trained, its test halves
    spotted and captioned (one job over the split, at the spots and the ground truth: Table 4 and the diagnostics
    need both), its metrics tabled (one job for both protocols); without the plugin, the config is refused naming
    the method."""
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "methods": ["toy"]}))
    env = {"STAR_PLUGINS": "tests.toy_method", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    jobs = planned_jobs(snakemake(tmp_path, "-n", "results/table1.csv", env=env))
    assert {k: jobs.get(k, 0) for k in ("spotting_train", "captioning_train", "spotting_infer", "captioning_infer",
                                        "captioning_infer_both", "evaluate_captions", "evaluate_both",
                                        "make_table")} == {
        "spotting_train": 1, "captioning_train": 1, "spotting_infer": 1, "captioning_infer": 0,
        "captioning_infer_both": 1, "evaluate_captions": 0, "evaluate_both": 1, "make_table": 1}
    refused = snakemake(tmp_path, "-n", "results/table1.csv", check=False, env={"STAR_PLUGINS": ""})
    assert refused.returncode != 0 and "'toy' is not one of" in refused.stdout + refused.stderr


def test_the_registry_imports_nothing_heavy():
    """The workflow builds its job graph from the registry: importing it pulls in no torch, paddle or transformers."""
    code = ("import sys, star.registry, star.config, star.data.games; "
            "print(sorted(m for m in ('torch', 'paddle', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
