"""CLIP as a video encoder: one embedding per decoded frame, at the frames cache's rate (`decode.fps`).

Vid2Seq's visual input: each frame through CLIP's image tower (ViT-L/14 in the paper), the projected image
embedding (`image_embeds`, 768-d for ViT-L/14) by default, or the tower's pooled output (`projection: false`).
The model is transformers' CLIPVisionModelWithProjection (or CLIPVisionModel) loaded from a local directory
(`features.clip.weights`): a CLIP vision checkpoint or a whole CLIP model (e.g. openai/clip-vit-large-patch14), with
config.json and model.safetensors (pickled weights are refused: they can run code) and, when present,
preprocessor_config.json. Frames are preprocessed as CLIP's image processor does (short side resized bicubic, centre
crop, CLIP's mean and std); without a preprocessor file, CLIP's defaults at the model's image size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from star.errors import InputError
from star.features.encoder import VideoEncoder
from star.provenance import sha256_file

WEIGHTS = "model.safetensors"
PREPROCESSOR = "preprocessor_config.json"
PROJECTION_KEY = "visual_projection.weight"


class ClipDirectoryError(InputError):
    """A CLIP directory that is missing, lacks its files, or does not hold what the config asks for."""


def check_clip_dir(directory: str | Path | None) -> Path:
    if directory is None:
        raise ClipDirectoryError("no CLIP model: set features.clip.weights to a local CLIP directory (e.g. a copy of "
                                 "openai/clip-vit-large-patch14 with config.json and model.safetensors)")
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise ClipDirectoryError(f"CLIP directory {directory.resolve()} does not exist (features.clip.weights)")
    for name in ("config.json", WEIGHTS):
        if not (directory / name).is_file():
            extra = " (pickled pytorch_model.bin is refused)" if name == WEIGHTS else ""
            raise ClipDirectoryError(f"CLIP directory {directory}: {name} is missing{extra}")
    return directory


def load_clip(directory: str | Path | None, projection: bool = True):
    """(model in eval mode, image processor) of a local CLIP directory (never the network)."""
    from safetensors import safe_open
    from transformers import CLIPImageProcessorPil, CLIPVisionModel, CLIPVisionModelWithProjection

    directory = check_clip_dir(directory)
    with safe_open(directory / WEIGHTS, "pt") as fh:
        has_projection = PROJECTION_KEY in fh.keys()
    if projection and not has_projection:  # transformers would initialise it at random: refuse
        raise ClipDirectoryError(f"CLIP directory {directory}: {WEIGHTS} has no {PROJECTION_KEY} (set "
                                 f"features.clip.projection: false to use the pooled output)")
    model_class = CLIPVisionModelWithProjection if projection else CLIPVisionModel
    model = model_class.from_pretrained(directory, local_files_only=True).eval()
    if (directory / PREPROCESSOR).is_file():
        processor = CLIPImageProcessorPil.from_pretrained(directory, local_files_only=True)
    else:
        size = model.config.image_size
        processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return model, processor


def embed_frames(model, processor, frames: np.ndarray) -> np.ndarray:
    """[n, H, W, 3] uint8 RGB frames -> [n, dim] float32 embeddings."""
    import torch

    pixels = processor(images=list(frames), return_tensors="pt")["pixel_values"]   # [n, 3, S, S]
    with torch.no_grad():
        out = model(pixel_values=pixels)
    embeds = out.image_embeds if hasattr(out, "image_embeds") else out.pooler_output
    return embeds.float().numpy()


def clip_features(model, processor, frames_h5, batch_size: int) -> Iterator[np.ndarray]:
    """[b, dim] float32 batches for every frame of an open frames cache, in order, read a slice at a time."""
    from tqdm import tqdm

    total = len(frames_h5["frames"])
    for start in tqdm(range(0, total, batch_size), desc="frames", unit="batch", leave=False):
        yield embed_frames(model, processor, frames_h5["frames"][start:start + batch_size])


def model_summary(model) -> dict:
    """The vision tower's sizes, for the provenance."""
    c = model.config
    return {"class": type(model).__name__, "hidden_size": c.hidden_size, "layers": c.num_hidden_layers,
            "heads": c.num_attention_heads, "image_size": c.image_size, "patch_size": c.patch_size,
            "projection_dim": getattr(c, "projection_dim", None)}


class ClipEncoder(VideoEncoder):
    """The `clip` video encoder (config section `features.clip`): rows at the frames cache's rate."""

    def __init__(self, cfg: dict, weights: str | None, threads: int):
        import torch

        super().__init__(cfg, weights, threads)
        torch.set_num_threads(max(1, threads))
        self.directory = check_clip_dir(weights or cfg["weights"])
        self.model, self.processor = load_clip(self.directory, cfg["projection"])
        self.dim = int(self.model.config.projection_dim if cfg["projection"] else self.model.config.hidden_size)
        self.weights_sha = sha256_file(self.directory / WEIGHTS)

    def check(self, path, frames_h5) -> None:
        self.fps = float(frames_h5.attrs["fps"])  # one row per decoded frame

    def features(self, frames_h5) -> Iterator[np.ndarray]:
        yield from clip_features(self.model, self.processor, frames_h5, self.cfg["batch_size"])

    def used(self) -> dict:
        return {**self.cfg, "weights": str(self.directory)}

    def provenance(self) -> dict:
        return {"weights": str(self.directory / WEIGHTS), "weights_sha256": self.weights_sha,
                "model": model_summary(self.model)}

    def attrs(self) -> dict:
        return {"weights_sha256": self.weights_sha, "projection": bool(self.cfg["projection"])}
