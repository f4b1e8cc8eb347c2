"""The registries: every method, feature encoder and dataset the pipeline knows, each one registration here.

Everything that lists them derives from these tables: the config schema's choices (star.config fills the enums
and `features.import`'s defaults from them), the workflow's wildcards and table names (workflow/rules/common.smk),
the command-line choices, the tables' display names and each method's spot selection. This module imports nothing
heavier than the standard library, so the workflow can build its job graph without torch or paddle.

Adding one (ARCHITECTURE.md walks through it):
- a method: its module(s) under star/models/ (a config dataclass with `tiny` and `paper` presets and the model
  classes of star.models' interface), then `register_method(Method(...))` below;
- an imported encoder: `register_encoder(Encoder(name, display, "imported", dim=..., fps=..., file=...))`;
- a video encoder: a `star.features.encoder.VideoEncoder` subclass, registered with `extractor="module:Class"`;
- a dataset: its labels/games readers under star/data/, then `register_dataset(Dataset(...))`.

Registrations from outside the package: the modules named in the environment variable STAR_PLUGINS (comma-separated,
importable from the workflow's folder, e.g. `STAR_PLUGINS=mylab.methods`) are imported at the end of this module and
register what they define; the Snakemake rules pass the variable on to their jobs.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

KINDS = ("two_stage", "dense")        # spotter + captioner | one model predicting events and captions
TOKENIZERS = ("words", "bpe", "t5")   # SDVC's word vocabulary | GPT-2's or a learned byte-level BPE | T5's
SELECTIONS = ("max_class", "per_label", "background")
# tokenizer classes a model file may name (class name -> "module:Class"); nothing else is ever loaded from one
TOKENIZER_CLASSES = {"WordVocab": "star.models.vocab:WordVocab", "Tokenizer": "star.models.tokenizer:Tokenizer"}


@dataclass(frozen=True)
class Method:
    name: str                       # config and path name (results/<stage>/<name>/...)
    display: str                    # its row name in the tables
    kind: str                       # one of KINDS
    config: str                     # "module:Class": config dataclass with `tiny` and `paper` presets
    spotter: str | None = None      # two_stage: "module:Class" (cfg, feature_dim, n_classes)
    captioner: str | None = None    # two_stage: "module:Class" (cfg, feature_dim, tokenizer)
    model: str | None = None        # dense: "module:Class" (cfg, feature_dim, tokenizer)
    positions: bool = False         # reads player positions (unless its variant drops them)
    tokenizer: str = "bpe"          # one of TOKENIZERS
    selection: str = "max_class"    # its own code's spot selection (star.infer.spots), two_stage only
    variants: bool = False          # takes STaR's ablation switches (star.variants)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"method {self.name}: kind {self.kind!r} is not one of {KINDS}")
        needed = ("spotter", "captioner") if self.kind == "two_stage" else ("model",)
        missing = [f for f in needed if not getattr(self, f)]
        if missing:
            raise ValueError(f"method {self.name}: a {self.kind} method needs {' and '.join(missing)}")
        if self.tokenizer not in TOKENIZERS or self.selection not in SELECTIONS:
            raise ValueError(f"method {self.name}: tokenizer {self.tokenizer!r} or selection {self.selection!r} "
                             f"unknown ({TOKENIZERS}, {SELECTIONS})")

    def target(self, stage: str) -> str:
        """The "module:Class" of its model for `stage` ('spotting' or 'captioning'; a dense model serves both)."""
        if self.kind == "dense":
            return self.model
        return self.spotter if stage == "spotting" else self.captioner


@dataclass(frozen=True)
class Encoder:
    name: str                       # config and path name (results/features/<name>/...)
    display: str                    # its name in the tables
    kind: str                       # "imported" (SoccerNet's .npy files) or "video" (computed from the frames)
    dim: int | None = None          # imported: feature dimension
    fps: float | None = None        # imported: feature rate
    file: str | None = None         # imported: the .npy file in a game folder, `{half}` replaced
    extractor: str | None = None    # video: "module:Class", a star.features.encoder.VideoEncoder

    def __post_init__(self):
        ok = (self.kind == "imported" and self.dim and self.fps and self.file) or \
             (self.kind == "video" and self.extractor)
        if not ok:
            raise ValueError(f"encoder {self.name}: an imported encoder needs dim, fps and file; a video encoder "
                             f"needs extractor (kind {self.kind!r})")


@dataclass(frozen=True)
class Dataset:
    name: str                       # dataset.source
    display: str
    halves: tuple[int, ...]         # the halves a game has (dataset.halves picks among them)
    classes: str                    # "module:NAME" of its event labels (spotters: background, then these)
    games: str                      # "module:function": config -> [(game path, split)] in split order
    synthetic: bool = False         # built by the workflow (rule world_synthesize), no SoccerNet .npy features


METHODS: dict[str, Method] = {}
ENCODERS: dict[str, Encoder] = {}
DATASETS: dict[str, Dataset] = {}


def register_method(method: Method) -> Method:
    METHODS[method.name] = method
    return method


def register_encoder(encoder: Encoder) -> Encoder:
    ENCODERS[encoder.name] = encoder
    return encoder


def register_dataset(dataset: Dataset) -> Dataset:
    DATASETS[dataset.name] = dataset
    return dataset


def _get(table: dict, what: str, name: str):
    if name not in table:
        raise ValueError(f"unknown {what} {name!r} (expected one of {', '.join(table)})")
    return table[name]


def method(name: str) -> Method:
    return _get(METHODS, "method", name)


def encoder(name: str) -> Encoder:
    return _get(ENCODERS, "encoder", name)


def dataset(name: str) -> Dataset:
    return _get(DATASETS, "dataset", name)


def load(target: str):
    """The object a "module:NAME" target names, imported now."""
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def imported_encoders() -> tuple[str, ...]:
    return tuple(n for n, e in ENCODERS.items() if e.kind == "imported")


def video_encoders() -> tuple[str, ...]:
    return tuple(n for n, e in ENCODERS.items() if e.kind == "video")


def tokenizer_modules() -> list[str]:
    """The modules of the tokenizer classes a model file may name (imported by name: named in code hashes)."""
    return sorted({t.split(":")[0] for t in TOKENIZER_CLASSES.values()})


def halves() -> list[int]:
    """Every half a registered dataset has (the CLI's --half choices)."""
    return sorted({h for d in DATASETS.values() for h in d.halves})


def classes(dataset_name: str) -> tuple[str, ...]:
    """The dataset's event labels (a spotter predicts background, then these)."""
    return tuple(load(dataset(dataset_name).classes))


# ---- methods -----------------------------------------------------------------------------------------------------
# A captioner with a GPT-2 decoder lives in a module of its own, so that the spotter's module (its code hash) does
# not include the decoder.
register_method(Method("sdvc", "SDVC", "two_stage", "star.models.sdvc:SDVCConfig",
                       spotter="star.models.sdvc:SDVCSpotter", captioner="star.models.sdvc:SDVCCaptioner",
                       tokenizer="words", selection="per_label"))
register_method(Method("delta", "Delta", "two_stage", "star.models.delta:DeltaConfig",
                       spotter="star.models.delta:DeltaSpotter",
                       captioner="star.models.delta_captioner:DeltaCaptioner"))
register_method(Method("star", "STaR", "two_stage", "star.models.star:STaRConfig",
                       spotter="star.models.star:STaRSpotter", captioner="star.models.star_captioner:STaRCaptioner",
                       positions=True, variants=True))
register_method(Method("pdvc", "PDVC", "dense", "star.models.pdvc:PDVCConfig", model="star.models.pdvc:PDVC",
                       tokenizer="words"))
register_method(Method("vid2seq", "Vid2Seq", "dense", "star.models.vid2seq:Vid2SeqConfig",
                       model="star.models.vid2seq:Vid2Seq", tokenizer="t5"))

# ---- encoders ----------------------------------------------------------------------------------------------------
register_encoder(Encoder("pptimesformer", "PP-TimesFormer", "video",
                         extractor="star.features.pptimesformer:PPTimesFormerEncoder"))
register_encoder(Encoder("clip", "CLIP", "video", extractor="star.features.clip:ClipEncoder"))
for _name, _display, _file, _fps, _dim in (
        ("baidu", "Baidu", "{half}_baidu_soccer_embeddings.npy", 1, 8576),
        ("resnet", "ResNET", "{half}_ResNET_TF2.npy", 2, 2048),
        ("resnet_pca512", "ResNET-PCA512", "{half}_ResNET_TF2_PCA512.npy", 2, 512),
        ("c3d", "C3D", "{half}_C3D.npy", 2, 4096),
        ("c3d_pca512", "C3D-PCA512", "{half}_C3D_PCA512.npy", 2, 512),
        ("i3d", "I3D", "{half}_I3D.npy", 2, 1024),
        ("i3d_pca512", "I3D-PCA512", "{half}_I3D_PCA512.npy", 2, 512)):
    register_encoder(Encoder(_name, _display, "imported", dim=_dim, fps=_fps, file=_file))

# ---- datasets ----------------------------------------------------------------------------------------------------
register_dataset(Dataset("synthetic", "synthetic broadcast world", (1, 2), "star.data.soccernet:CAPTION_LABELS",
                         "star.world.games:synthetic_games", synthetic=True))
register_dataset(Dataset("soccernet", "SoccerNet-Caption", (1, 2), "star.data.soccernet:CAPTION_LABELS",
                         "star.data.games:soccernet_games"))

# ---- plugins: registrations from outside the package (see the module's docstring) ---------------------------------
PLUGINS = tuple(m.strip() for m in os.environ.get("STAR_PLUGINS", "").split(",") if m.strip())
for _plugin in PLUGINS:
    importlib.import_module(_plugin)
