"""PP-TimesFormer: a ViT with divided space-time attention, in PaddlePaddle, with PaddleVideo's parameter names.

A PaddleVideo `.pdparams` (pickle of {name: ndarray}, maybe with the key `StructuredToParameterName@@`) loads
with no missing or unexpected keys: `backbone.{cls_token, pos_embed, time_embed, patch_embed.proj.*, blocks.i.*,
norm.*}` and `head.fc.*`. Per block: temporal attention across the T frames of each patch (+ `temporal_fc`), then
spatial attention within each frame (the CLS token copied to every frame and averaged back), then the MLP.

Input [B, 3, T, H, W], RGB / 255 (mean 0, std 1). The clip feature is the final LayerNorm of the CLS token.
Tokens after the CLS token are ordered patch-major, frame-minor: index = patch * T + frame.

Paddle is imported lazily: a command calls `setup_paddle` first, which sets the environment Paddle reads when
it loads (MKL_DEBUG_CPU_TYPE, OMP_NUM_THREADS).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from star.errors import InputError

FEATURE_ENV = {"MKL_DEBUG_CPU_TYPE": "5"}  # Paddle's bundled MKL is ~3x slower on AMD CPUs without it


def setup_paddle(threads: int | None = None):
    """Set the environment Paddle reads at import, import it, and pick the device; return the paddle module.

    MKL reads MKL_DEBUG_CPU_TYPE when Paddle loads it and Paddle forces OMP_NUM_THREADS=1 when unset, so both
    must be in os.environ before the first `import paddle` (the Snakemake rules also set them in the shell).
    """
    for key, value in FEATURE_ENV.items():
        os.environ.setdefault(key, value)
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    import paddle
    from paddle.base import core

    if threads:
        core.set_num_threads(threads)
    on_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    paddle.set_device("gpu" if on_gpu else "cpu")
    return paddle


@dataclass(frozen=True)
class TimesFormerConfig:
    image_size: int = 224       # square input side after resize + centre crop
    patch_size: int = 16        # patch side; the grid is image_size // patch_size squared
    width: int = 768            # token dimension (the feature dimension)
    depth: int = 12             # number of divided space-time blocks
    heads: int = 12             # attention heads (width must divide by it)
    mlp_ratio: float = 4.0      # MLP hidden width / width
    qkv_bias: bool = False      # PaddleVideo's pptimesformer has no qkv bias
    ln_eps: float = 1e-6        # LayerNorm epsilon
    frames: int = 8             # T, frames per clip
    num_classes: int = 400      # head.fc outputs (K400 for PaddleVideo's checkpoints)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


PRESETS = {
    "base": TimesFormerConfig(),  # PaddleVideo's ViT-B/16
    "tiny": TimesFormerConfig(image_size=64, width=192, depth=4, heads=3, frames=4),  # runs on a laptop CPU
}

NAME_MAP_KEY = "StructuredToParameterName@@"


class WeightsError(InputError):
    """A weights file that is missing, unreadable, or does not fit the model."""


def build_config(preset: str, frames: int | None = None, num_classes: int | None = None) -> TimesFormerConfig:
    cfg = PRESETS[preset]
    if frames is not None:
        cfg = replace(cfg, frames=frames)
    if num_classes is not None:
        cfg = replace(cfg, num_classes=num_classes)
    return cfg


# ----------------------------------------------------------------------------- model (Paddle)

def _layers():
    """Define the Paddle layers lazily, so importing this module does not import Paddle."""
    import paddle
    import paddle.nn as nn
    import paddle.nn.functional as F

    trunc_normal = nn.initializer.TruncatedNormal(std=0.02)
    zeros = nn.initializer.Constant(0.0)

    def linear(d_in: int, d_out: int, bias: bool = True, init=trunc_normal) -> nn.Linear:
        return nn.Linear(d_in, d_out, weight_attr=paddle.ParamAttr(initializer=init),
                         bias_attr=paddle.ParamAttr(initializer=zeros) if bias else False)

    class Attention(nn.Layer):
        def __init__(self, cfg: TimesFormerConfig):
            super().__init__()
            self.heads = cfg.heads
            self.scale = (cfg.width // cfg.heads) ** -0.5
            self.qkv = linear(cfg.width, 3 * cfg.width, bias=cfg.qkv_bias)
            self.proj = linear(cfg.width, cfg.width)

        def forward(self, x):
            n, length, width = x.shape
            qkv = self.qkv(x).reshape([n, length, 3, self.heads, width // self.heads])  # [n, L, 3, h, d]
            q, k, v = qkv.transpose([2, 0, 3, 1, 4]).unbind(0)                          # each [n, h, L, d]
            attn = F.softmax((q @ k.transpose([0, 1, 3, 2])) * self.scale, axis=-1)    # [n, h, L, L]
            out = (attn @ v).transpose([0, 2, 1, 3]).reshape([n, length, width])       # [n, L, h*d]
            return self.proj(out)

    class Mlp(nn.Layer):
        def __init__(self, cfg: TimesFormerConfig):
            super().__init__()
            hidden = int(cfg.width * cfg.mlp_ratio)
            self.fc1 = linear(cfg.width, hidden)
            self.fc2 = linear(hidden, cfg.width)

        def forward(self, x):
            return self.fc2(F.gelu(self.fc1(x)))

    class Block(nn.Layer):
        def __init__(self, cfg: TimesFormerConfig, first: bool):
            super().__init__()
            self.temporal_norm1 = nn.LayerNorm(cfg.width, epsilon=cfg.ln_eps)
            self.temporal_attn = Attention(cfg)
            # as TimeSformer: every block but the first starts as a pure spatial block
            self.temporal_fc = linear(cfg.width, cfg.width, init=trunc_normal if first else zeros)
            self.norm1 = nn.LayerNorm(cfg.width, epsilon=cfg.ln_eps)
            self.attn = Attention(cfg)
            self.norm2 = nn.LayerNorm(cfg.width, epsilon=cfg.ln_eps)
            self.mlp = Mlp(cfg)

        def forward(self, x, frames: int):
            b, length, width = x.shape
            patches = (length - 1) // frames
            cls, tokens = x[:, :1], x[:, 1:]                                      # [b, 1, D], [b, P*T, D]
            # temporal attention: each patch attends over its T frames
            xt = tokens.reshape([b * patches, frames, width])                     # [b*P, T, D]
            xt = self.temporal_attn(self.temporal_norm1(xt))
            xt = xt.reshape([b, patches * frames, width])                         # [b, P*T, D]
            tokens = tokens + self.temporal_fc(xt)
            # spatial attention: each frame attends over its patches, with its own copy of the CLS token
            xs = tokens.reshape([b, patches, frames, width]).transpose([0, 2, 1, 3])  # [b, T, P, D]
            xs = xs.reshape([b * frames, patches, width])                         # [b*T, P, D]
            cls_per_frame = cls.tile([1, frames, 1]).reshape([b * frames, 1, width])  # [b*T, 1, D]
            xs = self.attn(self.norm1(paddle.concat([cls_per_frame, xs], axis=1)))   # [b*T, 1+P, D]
            cls_res = xs[:, 0].reshape([b, frames, width]).mean(axis=1, keepdim=True)  # [b, 1, D]
            xs = xs[:, 1:].reshape([b, frames, patches, width]).transpose([0, 2, 1, 3])  # [b, P, T, D]
            xs = xs.reshape([b, patches * frames, width])                         # [b, P*T, D]
            x = paddle.concat([cls + cls_res, tokens + xs], axis=1)
            return x + self.mlp(self.norm2(x))

    class PatchEmbed(nn.Layer):
        def __init__(self, cfg: TimesFormerConfig):
            super().__init__()
            self.proj = nn.Conv2D(3, cfg.width, kernel_size=cfg.patch_size, stride=cfg.patch_size)

        def forward(self, x):
            b, c, t, h, w = x.shape
            x = x.transpose([0, 2, 1, 3, 4]).reshape([b * t, c, h, w])  # [b*T, 3, H, W]
            x = self.proj(x)                                              # [b*T, D, g, g]
            return x.flatten(2).transpose([0, 2, 1])                      # [b*T, P, D]

    class VisionTransformer(nn.Layer):
        def __init__(self, cfg: TimesFormerConfig):
            super().__init__()
            self.cfg = cfg
            self.patch_embed = PatchEmbed(cfg)
            self.cls_token = self.create_parameter([1, 1, cfg.width], default_initializer=trunc_normal)
            self.pos_embed = self.create_parameter([1, cfg.grid ** 2 + 1, cfg.width], default_initializer=trunc_normal)
            self.time_embed = self.create_parameter([1, cfg.frames, cfg.width], default_initializer=zeros)
            self.blocks = nn.LayerList([Block(cfg, first=i == 0) for i in range(cfg.depth)])
            self.norm = nn.LayerNorm(cfg.width, epsilon=cfg.ln_eps)

        def forward(self, x):
            cfg = self.cfg
            b, _, t, h, w = x.shape
            if (t, h, w) != (cfg.frames, cfg.image_size, cfg.image_size):
                raise ValueError(f"expected clips [B, 3, {cfg.frames}, {cfg.image_size}, {cfg.image_size}], "
                                 f"got {list(x.shape)}")
            tokens = self.patch_embed(x) + self.pos_embed[:, 1:]               # [b*T, P, D]
            patches = tokens.shape[1]
            tokens = tokens.reshape([b, t, patches, cfg.width]).transpose([0, 2, 1, 3])  # [b, P, T, D]
            tokens = tokens + self.time_embed.unsqueeze(0)                     # time_embed [1, 1, T, D]
            tokens = tokens.reshape([b, patches * t, cfg.width])               # [b, P*T, D]
            cls = (self.cls_token + self.pos_embed[:, :1]).expand([b, 1, cfg.width])
            x = paddle.concat([cls, tokens], axis=1)                           # [b, 1+P*T, D]
            for block in self.blocks:
                x = block(x, t)
            return self.norm(x[:, 0])                                          # CLS token [b, D]

    class Head(nn.Layer):
        def __init__(self, cfg: TimesFormerConfig):
            super().__init__()
            self.fc = linear(cfg.width, cfg.num_classes)

        def forward(self, features):
            return self.fc(features)

    class TimesFormer(nn.Layer):
        """backbone (clip -> feature) + head (feature -> class logits), named as PaddleVideo's recognizer."""

        def __init__(self, cfg: TimesFormerConfig):
            super().__init__()
            self.cfg = cfg
            self.backbone = VisionTransformer(cfg)
            self.head = Head(cfg)

        def features(self, clips):
            return self.backbone(clips)

        def forward(self, clips):
            return self.head(self.backbone(clips))

    return TimesFormer


def build_model(cfg: TimesFormerConfig, seed: int = 0, lazy: bool = False):
    """A freshly initialised model (deterministic given `seed`), in eval mode.

    `lazy` only declares the parameters (names and shapes, no memory): enough to check a checkpoint's layout.
    """
    import paddle

    paddle.seed(seed)
    with paddle.LazyGuard() if lazy else contextlib.nullcontext():
        model = _layers()(cfg)
    model.eval()
    return model


# ----------------------------------------------------------------------------- weights

def read_weights(path: str | Path) -> dict:
    """{name: ndarray} from a `.pdparams` (read by a restricted unpickler: no code runs) or a `.safetensors`,
    without the structured-name map; WeightsError if missing or unreadable."""
    from star.features.pdparams import UnsafeWeightsError, read_pdparams, read_safetensors

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file does not exist")
    try:
        state = read_safetensors(path) if path.suffix == ".safetensors" else read_pdparams(path)
    except UnsafeWeightsError:
        raise
    except Exception as exc:  # pickle, safetensors and OS errors all mean the same thing here
        detail = " ".join(str(exc).split())
        raise WeightsError(f"{path}: not a readable .pdparams or .safetensors file ({type(exc).__name__}: {detail})"
                           ) from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict of named arrays, found {type(state).__name__}")
    arrays = {k: v for k, v in state.items() if k != NAME_MAP_KEY}
    odd = sorted(k for k, v in arrays.items() if not isinstance(v, np.ndarray))
    if odd:
        raise WeightsError(f"{path}: entries {odd[:5]} are not arrays")
    return arrays


def config_for_weights(cfg: TimesFormerConfig, state: dict, frames_from_config: bool) -> TimesFormerConfig:
    """Adopt what the checkpoint fixes: T (from time_embed, unless the config sets it) and the head's classes."""
    if not frames_from_config and "backbone.time_embed" in state:
        cfg = replace(cfg, frames=int(state["backbone.time_embed"].shape[1]))
    if "head.fc.bias" in state:
        cfg = replace(cfg, num_classes=int(state["head.fc.bias"].shape[0]))
    return cfg


def _resize_nearest(array, size: tuple[int, ...]):
    """Nearest-neighbour resize of a [1, C, *spatial] array to `size` (PaddleVideo's embedding interpolation)."""
    import paddle
    import paddle.nn.functional as F

    return F.interpolate(paddle.to_tensor(array), size=list(size), mode="nearest").numpy()


def fit_embeddings(state: dict, cfg: TimesFormerConfig) -> dict:
    """Resize pos_embed to the model's patch grid and time_embed to its T (nearest), as PaddleVideo does."""
    state = dict(state)
    pos = state.get("backbone.pos_embed")
    if pos is not None and pos.ndim == 3 and pos.shape[1] != cfg.grid ** 2 + 1:
        side = int(round((pos.shape[1] - 1) ** 0.5))
        if side * side == pos.shape[1] - 1:
            grid = pos[:, 1:].transpose(0, 2, 1).reshape(1, pos.shape[2], side, side)  # [1, D, s, s]
            grid = _resize_nearest(grid, (cfg.grid, cfg.grid))                          # [1, D, g, g]
            grid = grid.reshape(1, pos.shape[2], cfg.grid ** 2).transpose(0, 2, 1)     # [1, g*g, D]
            state["backbone.pos_embed"] = np.concatenate([pos[:, :1], grid], axis=1)
    time = state.get("backbone.time_embed")
    if time is not None and time.ndim == 3 and time.shape[1] != cfg.frames:
        line = time.transpose(0, 2, 1)                                   # [1, D, T0]
        line = _resize_nearest(line[..., None], (cfg.frames, 1))[..., 0]  # [1, D, T]
        state["backbone.time_embed"] = line.transpose(0, 2, 1)          # [1, T, D]
    return state


def check_state(model, state: dict, where: str) -> None:
    """WeightsError listing missing and unexpected keys and shape mismatches."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} != model {expected[k]}"
                    for k in expected.keys() & state.keys() if tuple(state[k].shape) != expected[k])
    problems = [f"missing keys {missing}"] * bool(missing) + [f"unexpected keys {unexpected}"] * bool(unexpected)
    problems += [f"shape mismatches {shapes}"] * bool(shapes)
    if problems:
        cls, depth = state.get("backbone.cls_token"), len({k.split(".")[2] for k in state if ".blocks." in k})
        if cls is not None and (cls.shape[-1], depth) != (model.cfg.width, model.cfg.depth):
            problems.append(f"the checkpoint is width {cls.shape[-1]}, depth {depth}; the model is width "
                            f"{model.cfg.width}, depth {model.cfg.depth}: check features.pptimesformer.preset")
        raise WeightsError(f"{where}: checkpoint does not fit the model: " + "; ".join(problems))


def load_model(preset: str, weights: str | Path | None, frames: int | None = None, seed: int = 0):
    """(model, config, sha256 of the weights or None): the preset with a checkpoint loaded, in eval mode.

    T comes from `frames` if given, else from the checkpoint's time_embed, else from the preset.
    """
    from star.provenance import sha256_file

    cfg = build_config(preset, frames)
    if weights is None:
        return build_model(cfg, seed), cfg, None
    state = read_weights(weights)
    cfg = config_for_weights(cfg, state, frames_from_config=frames is not None)
    state = fit_embeddings(state, cfg)
    model = build_model(cfg, seed, lazy=True)  # every parameter comes from the checkpoint: skip the init
    check_state(model, state, str(weights))
    model.set_state_dict({k: v.astype("float32") for k, v in state.items()})
    return model, cfg, sha256_file(weights)


def save_weights(model, path: str | Path) -> None:
    """Write the model's state dict as a `.pdparams` (PaddleVideo's layout), atomically."""
    import paddle

    from star.provenance import atomic_path

    with atomic_path(path) as tmp:
        paddle.save(model.state_dict(), str(tmp))

