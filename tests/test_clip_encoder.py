"""The `clip` video encoder on a tiny random CLIP saved to a temporary directory: shapes, the features cache's
layout, determinism, and one-line errors for a missing or unusable directory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from star.features.clip import ClipDirectoryError, embed_frames, load_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def save_tiny_clip(directory, projection=True, processor=True):
    import torch
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=16)
    model = (CLIPVisionModelWithProjection if projection else CLIPVisionModel)(config)
    model.save_pretrained(directory)
    if processor:
        CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
            directory)
    return model


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("clip")
    save_tiny_clip(directory)
    return directory


def frames(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 45, 80, 3), dtype=np.uint8)


def test_embeddings_shape_and_determinism(clip_dir):
    model, processor = load_clip(clip_dir)
    out = embed_frames(model, processor, frames())
    assert out.shape == (5, 16) and out.dtype == np.float32 and np.isfinite(out).all()
    again_model, again_processor = load_clip(clip_dir)
    assert np.array_equal(embed_frames(again_model, again_processor, frames()), out)
    # one frame at a time gives the same rows as a batch (the cache is written in batches)
    single = np.concatenate([embed_frames(model, processor, f[None]) for f in frames()])
    np.testing.assert_allclose(single, out, rtol=1e-5, atol=1e-6)
    pooled, pooled_processor = load_clip(clip_dir, projection=False)
    assert embed_frames(pooled, pooled_processor, frames()).shape == (5, 32)


def test_processor_defaults_without_its_file(tmp_path, clip_dir):
    save_tiny_clip(tmp_path / "bare", processor=False)
    model, processor = load_clip(tmp_path / "bare")
    with_file = embed_frames(*load_clip(clip_dir), frames())
    np.testing.assert_allclose(embed_frames(model, processor, frames()), with_file, rtol=1e-5, atol=1e-6)


def test_clip_directory_errors_are_one_line(tmp_path):
    with pytest.raises(ClipDirectoryError, match="features.clip.weights"):
        load_clip(None)
    with pytest.raises(ClipDirectoryError, match="does not exist") as err:
        load_clip(tmp_path / "missing")
    assert "\n" not in str(err.value) and "missing" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipDirectoryError, match="config.json is missing"):
        load_clip(tmp_path / "empty")
    save_tiny_clip(tmp_path / "pooled", projection=False)
    with pytest.raises(ClipDirectoryError, match="visual_projection"):
        load_clip(tmp_path / "pooled")


def write_frames(path, n=7, fps=2.0):
    from star.data.cache import write_cache

    images = frames(n, seed=1)
    write_cache(path, "frames", {"frames": images, "times": np.arange(n) / fps}, {"stage": "test"},
                game="g1", half=1, fps=fps, width=80, height=45, source="test.mkv")
    return images


def test_extract_writes_the_feature_cache_layout_deterministically(tmp_path, clip_dir):
    from star.config import section
    from star.data.cache import cache_attrs, open_cache
    from star.features.extract import extract_half

    images = write_frames(tmp_path / "frames.h5")
    cfg = section("features.clip", {"weights": str(clip_dir), "batch_size": 3})
    for name in ("a.h5", "b.h5"):
        assert extract_half("clip", cfg, tmp_path / "frames.h5", tmp_path / name) == 16
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()   # two builds, the same bytes
    with open_cache(tmp_path / "a.h5", "features", fps=2.0, dim=16, encoder="clip") as h5:
        assert list(h5) == ["features"] and h5["features"].shape == (7, 16)  # one row per decoded frame
        rows = h5["features"][:]
    model, processor = load_clip(clip_dir)
    np.testing.assert_allclose(rows, embed_frames(model, processor, images), rtol=1e-5, atol=1e-6)
    attrs = cache_attrs(tmp_path / "a.h5")
    assert (attrs["game"], attrs["half"], attrs["length"], attrs["projection"]) == ("g1", 1, 7, True)
    prov = attrs["provenance"]
    assert json.loads(prov["config"])["weights"] == str(clip_dir) and prov["weights_sha256"] == attrs["weights_sha256"]
    assert prov["model"]["hidden_size"] == 32 and prov["model"]["projection_dim"] == 16


def test_config_needs_a_clip_directory_when_clip_is_an_encoder():
    from star.config import ConfigError, validate

    with pytest.raises(ConfigError, match="features.clip.weights"):
        validate({"features": {"encoders": ["pptimesformer", "clip"]}})
    cfg = validate({"features": {"encoders": ["clip"], "clip": {"weights": "/models/clip"}}})
    assert cfg["features"]["clip"] == {"weights": "/models/clip", "projection": True, "batch_size": 16}


def test_vid2seq_on_clip_features_plans_through_the_workflow(tmp_path, clip_dir):
    """Table 1 with Vid2Seq on two encoders, `clip` one of them: every half gets a CLIP features_extract job, and
    Vid2Seq trains one model and captions the test game per encoder, with no spotting job."""
    import yaml

    from tests.conftest import TINY, snakemake
    from tests.test_workflow import planned_jobs

    config = {**TINY, "methods": ["vid2seq"],
              "features": {**TINY["features"], "encoders": ["pptimesformer", "clip"],
                           "clip": {"weights": str(clip_dir)}}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", "-p", "results/table1.csv")
    jobs = planned_jobs(proc)
    assert jobs["features_extract"] == 12  # 3 games x 2 halves x 2 video encoders
    assert "spotting_train" not in jobs and "spotting_infer" not in jobs
    assert (jobs["captioning_train"], jobs["captioning_infer"], jobs["evaluate_captions"]) == (2, 2, 2)
    assert "star features-extract --encoder clip" in proc.stdout
