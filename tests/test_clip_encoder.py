"""The `clip` video encoder on a tiny random CLIP saved to a temporary directory: shapes, the features cache's
layout, determinism, and one-line errors for a missing or unusable directory."""

from __future__ import annotations

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
    with pytest.raises(ClipDirectoryError, match="features.clip.model"):
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
