"""Vid2Seq (Yang et al., CVPR 2023): dense video captioning as one sequence-to-sequence problem, on clips of a half.

    features [B, T, D] -> Linear(D -> d_model) + learned temporal positions -> temporal transformer  (the encoder)
    -> T5's decoder (cross-attention to the encoder's output) -> one sequence per clip:
       <start> <end> caption <start> <end> caption ... </s>

The output format, its time tokens and its strict parsing are in star.models.vid2seq_tokens. The paper's model
has two encoders whose outputs are concatenated for the decoder: the visual one (CLIP ViT-L/14 frame embeddings
-> a 12-layer temporal transformer) and T5's encoder over the transcribed speech. SoccerNet has no transcripts,
so the model is Vid2Seq's visual-only form: T5's text encoder has nothing to read and is not built (a pretrained
T5 directory loads its decoder, shared embeddings and output layer; its encoder weights are skipped).

`tiny` trains a small T5 from scratch with the BPE learned on the train captions (star.models.tokenizer); `paper`
is T5-base's sizes, and `pretrained` (config `model.t5_dir`) loads T5 from a local directory with T5's own
tokenizer: the time tokens are new rows of its embedding and output layer. Clips longer than `max_frames` are
subsampled evenly to `max_frames` frames (Vid2Seq reads 100 frames of a video); times stay relative to the clip.

Each generated event gets a confidence (our addition: Vid2Seq scores none): exp of the mean log-probability of
its tokens (times and text) under the model, from one teacher-forced pass over the generated sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers import T5Config, T5ForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput

from star.errors import InputError
from star.models.vid2seq_tokens import TimeTokens, event_sequence, parse_sequence

if TYPE_CHECKING:
    from star.models.tokenizer import Tokenizer

T5_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class T5DirectoryError(InputError):
    """A T5 directory that is missing or lacks its configuration, weights or tokenizer."""


@dataclass
class Vid2SeqConfig:
    clip_s: int = 60                # clip length (s) the half is cut into, for training and inference
    clip_stride_s: int = 30         # inference: clips start every stride seconds (overlaps merged by NMS)
    max_frames: int = 100           # frames the encoder reads per clip, longer clips subsampled (Vid2Seq: 100)
    num_bins: int = 100             # relative time tokens per clip (Vid2Seq: 100)
    max_tokens: int = 256           # target / generated sequence length, end token included (Vid2Seq: 256)
    d_model: int = 768              # T5 width (T5-base: 768)
    d_ff: int = 3072                # T5 feed-forward width
    d_kv: int = 64                  # T5 attention head width
    num_heads: int = 12
    decoder_layers: int = 12        # T5 decoder blocks
    temporal_layers: int = 12       # visual temporal transformer blocks (Vid2Seq: 12; 0 = projection only)
    temporal_heads: int = 12
    temporal_ff: int = 2048         # temporal transformer feed-forward width (Vid2Seq: 2048)
    dropout: float = 0.1            # T5 decoder dropout (Vid2Seq: 0.1); the visual encoder has none (Vid2Seq)
    label_smoothing: float = 0.1    # of the token cross-entropy (Vid2Seq: 0.1)
    beam_size: int = 4              # inference beam search (Vid2Seq: 4)
    nms_window_s: float = 30.0      # inference: events whose centres are closer than this keep the more confident
    threshold: float = 0.0          # inference: events below this confidence are dropped
    pretrained: str | None = None   # local T5 directory (config.json, weights, tokenizer.json); sizes from it

    @classmethod
    def paper(cls) -> Vid2SeqConfig:
        return cls()

    @classmethod
    def tiny(cls) -> Vid2SeqConfig:
        # sized for the 2-core CPU budget: a 2-block decoder of width 128 trained from scratch
        return cls(d_model=128, d_ff=256, d_kv=32, num_heads=4, decoder_layers=2, temporal_layers=1,
                   temporal_heads=4, temporal_ff=256, beam_size=1)


def check_t5_dir(directory: str | Path) -> Path:
    """A local T5 directory with config.json, weights and tokenizer.json; a one-line error naming it otherwise."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise T5DirectoryError(f"T5 directory {directory.resolve()} does not exist (model.t5_dir: a local copy of "
                               f"T5, e.g. t5-base with config.json, model.safetensors and tokenizer.json)")
    if not (directory / "config.json").is_file():
        raise T5DirectoryError(f"T5 directory {directory}: config.json is missing")
    if not any((directory / f).is_file() for f in T5_WEIGHT_FILES):
        raise T5DirectoryError(f"T5 directory {directory}: no weights ({' or '.join(T5_WEIGHT_FILES)})")
    return directory


def load_t5(directory: str | Path) -> T5ForConditionalGeneration:
    """T5 from a local directory (never the network), without its encoder blocks (see the module doc)."""
    directory = check_t5_dir(directory)
    config = T5Config.from_pretrained(directory, local_files_only=True)
    config.num_decoder_layers, config.num_layers = config.num_decoder_layers, 0  # keep the decoder's depth
    return T5ForConditionalGeneration.from_pretrained(directory, config=config, local_files_only=True)


def random_t5(cfg: Vid2SeqConfig, vocab_size: int, pad_id: int, end_id: int) -> T5ForConditionalGeneration:
    config = T5Config(vocab_size=vocab_size, d_model=cfg.d_model, d_kv=cfg.d_kv, d_ff=cfg.d_ff, num_layers=0,
                      num_decoder_layers=cfg.decoder_layers, num_heads=cfg.num_heads, dropout_rate=cfg.dropout,
                      pad_token_id=pad_id, eos_token_id=end_id, decoder_start_token_id=pad_id)
    return T5ForConditionalGeneration(config)


class TemporalEncoder(nn.Module):
    """[B, T, D] features + [B, T] mask (True = real) -> [B, T, d_model]: projection, learned positions, then
    pre-norm transformer blocks and a final LayerNorm (Vid2Seq's temporal transformer)."""

    def __init__(self, cfg: Vid2SeqConfig, feature_dim: int):
        super().__init__()
        self.project = nn.Linear(feature_dim, cfg.d_model)
        self.positions = nn.Parameter(torch.randn(cfg.max_frames, cfg.d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.temporal_heads, cfg.temporal_ff, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.temporal_layers, enable_nested_tensor=False) \
            if cfg.temporal_layers else None
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.project(features) + self.positions[: features.shape[1]]
        if self.blocks is not None:
            hidden = self.blocks(hidden, src_key_padding_mask=~mask)
        return self.norm(hidden)


def subsample(features: torch.Tensor, mask: torch.Tensor, max_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, D], [B, T] -> at most `max_frames` frames spread evenly over T (the same frames for every clip)."""
    length = features.shape[1]
    if length <= max_frames:
        return features, mask
    index = torch.linspace(0, length - 1, max_frames, device=features.device).round().long()
    return features[:, index], mask[:, index]


class Vid2Seq(nn.Module):
    """Model(cfg, feature_dim, tokenizer); model(batch) -> loss; model.predict(features) -> events of a clip."""

    def __init__(self, cfg: Vid2SeqConfig, feature_dim: int, tokenizer: Tokenizer):
        super().__init__()
        self.cfg, self.tokenizer = cfg, tokenizer
        self.times = TimeTokens(offset=tokenizer.vocab_size, bins=cfg.num_bins)
        vocab = tokenizer.vocab_size + cfg.num_bins
        if cfg.pretrained:
            self.t5 = load_t5(cfg.pretrained)
            cfg = self.cfg = replace(cfg, d_model=self.t5.config.d_model)  # the temporal encoder feeds T5's width
            self.t5.resize_token_embeddings(vocab)   # time tokens: new rows after the text vocabulary
            self.t5.config.decoder_start_token_id = tokenizer.pad_id
            self.t5.generation_config.decoder_start_token_id = tokenizer.pad_id
        else:
            self.t5 = random_t5(cfg, vocab, tokenizer.pad_id, tokenizer.end_id)
        if cfg.d_model % cfg.temporal_heads:
            raise InputError(f"Vid2Seq: width {cfg.d_model} is not a multiple of temporal_heads {cfg.temporal_heads}")
        self.encoder = TemporalEncoder(cfg, feature_dim)

    def encode(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[BaseModelOutput, torch.Tensor]:
        features, mask = subsample(features, mask, self.cfg.max_frames)
        return BaseModelOutput(last_hidden_state=self.encoder(features, mask)), mask

    def targets(self, events, durations) -> tuple[torch.Tensor, torch.Tensor]:
        """Per clip events [(start, end, caption ids)] (frames) and clip durations (frames) -> (ids [B, L], mask)."""
        rows = [event_sequence(e, d, self.times, self.tokenizer.end_id, self.cfg.max_tokens)
                for e, d in zip(events, durations, strict=True)]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.bool)
        for b, row in enumerate(rows):
            ids[b, : len(row)], mask[b, : len(row)] = torch.tensor(row), True
        return ids, mask

    def sequence_loss(self, features, mask, targets, target_mask) -> torch.Tensor:
        """Token cross-entropy (label-smoothed) of the target sequences given the clips."""
        encoded, enc_mask = self.encode(features, mask)
        logits = self.t5(encoder_outputs=encoded, attention_mask=enc_mask.long(),
                         decoder_input_ids=self.t5._shift_right(targets),
                         decoder_attention_mask=target_mask.long()).logits    # [B, L, V]
        return F.cross_entropy(logits[target_mask], targets[target_mask], label_smoothing=self.cfg.label_smoothing)

    def forward(self, batch) -> torch.Tensor:
        """Loss on a DenseBatch: clips' features [B, T, D] with mask and per clip its events."""
        durations = batch.mask.sum(dim=1).clamp(min=1).tolist()
        events = [[(e.start, e.end, list(e.tokens)) for e in clip] for clip in batch.events]
        targets, target_mask = self.targets(events, durations)
        device = batch.features.device
        return self.sequence_loss(batch.features, batch.mask, targets.to(device), target_mask.to(device))

    @torch.no_grad()
    def generate(self, features: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Generated ids per clip (decoder start token removed). Call in eval mode."""
        encoded, enc_mask = self.encode(features, mask)
        out = self.t5.generate(encoder_outputs=encoded, attention_mask=enc_mask.long(),
                               max_new_tokens=self.cfg.max_tokens, num_beams=self.cfg.beam_size, do_sample=False,
                               eos_token_id=self.tokenizer.end_id, pad_token_id=self.tokenizer.pad_id,
                               decoder_start_token_id=self.tokenizer.pad_id)
        return [row[1:].tolist() for row in out]

    @torch.no_grad()
    def token_log_probs(self, features: torch.Tensor, mask: torch.Tensor, ids: list[int]) -> torch.Tensor:
        """[len(ids)] log-probability of each of `ids` given the clip and the ids before it (teacher forced)."""
        encoded, enc_mask = self.encode(features, mask)
        labels = torch.tensor([ids], dtype=torch.long, device=features.device)
        logits = self.t5(encoder_outputs=encoded, attention_mask=enc_mask.long(),
                         decoder_input_ids=self.t5._shift_right(labels)).logits[0]   # [L, V]
        return torch.log_softmax(logits.float(), dim=-1).gather(1, labels[0, :, None])[:, 0]

    @torch.no_grad()
    def predict_clip(self, features: torch.Tensor, mask: torch.Tensor | None = None):
        """Events of one clip, features [T, D] (mask [T], True = real): (events, dropped), each event
        (start, end, caption, confidence) with times in frames from the clip's start."""
        if mask is None:
            mask = torch.ones(features.shape[0], dtype=torch.bool, device=features.device)
        features, mask = features[None], mask[None]
        ids = self.generate(features, mask)[0]
        duration = max(int(mask.sum()), 1)
        parsed = parse_sequence(ids, duration, self.times, self.tokenizer.end_id, self.tokenizer.pad_id,
                                self.tokenizer.decode)
        if not parsed.events:
            return [], parsed.dropped
        log_probs = self.token_log_probs(features, mask, ids)
        events = [(e.start, e.end, self.tokenizer.decode(e.text_ids).strip(),
                   float(log_probs[e.first:e.last].mean().exp())) for e in parsed.events]
        return events, parsed.dropped
