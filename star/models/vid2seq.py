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
from star.models.dense import DenseBatch, Event
from star.models.vid2seq_tokens import TimeTokens, event_sequence, parse_sequence

if TYPE_CHECKING:
    from star.models.tokenizer import Tokenizer

T5_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class T5DirectoryError(InputError):
    """A T5 directory that is missing or lacks its configuration, weights or tokenizer."""


@dataclass
class Vid2SeqConfig:
    # clips (star.models.dense): what the model reads at once, and how a half is covered
    clip_s: float = 100.0           # Vid2Seq reads 100 frames of a whole (~2-min) video; here 100 s of a half
    train_stride_s: float = 30.0    # training clips start every this many seconds
    infer_stride_s: float = 50.0    # inference clips overlap by clip_s - infer_stride_s
    event_s: float = 10.0           # training segment of a point annotation, centred on it
    nms_window_s: float = 10.0      # merging clips: events within half of this of a more confident one are dropped
    max_frames: int = 100           # frames the encoder reads per clip, longer clips subsampled (Vid2Seq: 100)
    # the sequence
    num_bins: int = 100             # relative time tokens per clip (Vid2Seq: 100)
    max_tokens: int = 256           # target / generated sequence length, end token included (Vid2Seq: 256)
    # T5 (T5-base's sizes; a pretrained directory's own replace them)
    d_model: int = 768              # T5 width
    d_ff: int = 3072                # T5 feed-forward width
    d_kv: int = 64                  # T5 attention head width
    num_heads: int = 12
    decoder_layers: int = 12        # T5 decoder blocks
    dropout: float = 0.1            # T5 decoder dropout (Vid2Seq: 0.1); the visual encoder has none (Vid2Seq)
    pretrained: str | None = None   # local T5 directory (config.json, weights, tokenizer.json): model.t5_dir
    # visual temporal transformer
    temporal_layers: int = 12       # blocks (Vid2Seq: 12; 0 = projection and positions only)
    temporal_heads: int = 12
    temporal_ff: int = 2048         # feed-forward width (Vid2Seq: 2048)
    # training and decoding
    label_smoothing: float = 0.1    # of the token cross-entropy (Vid2Seq: 0.1)
    beam_size: int = 4              # inference beam search (Vid2Seq: 4)

    @classmethod
    def paper(cls) -> Vid2SeqConfig:
        return cls()

    @classmethod
    def tiny(cls) -> Vid2SeqConfig:
        """CPU-sized: 60-s clips, a 2-block T5 decoder of width 128 and one temporal block, greedy decoding."""
        return cls(clip_s=60.0, train_stride_s=15.0, infer_stride_s=30.0, d_model=128, d_ff=256, d_kv=32,
                   num_heads=4, decoder_layers=2, temporal_layers=1, temporal_heads=4, temporal_ff=256, beam_size=1)


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
        self.parsing = {"events": 0, "dropped": 0, "fallback": 0}  # predict's parsing, summed over clips

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

    def forward(self, batch: DenseBatch) -> torch.Tensor:
        """Loss on a DenseBatch: per clip its events' segments (samples) and caption tokens (end token dropped:
        the sequence has one end token, after its last event)."""
        end = self.tokenizer.end_id
        events = []
        for clip in batch.events:
            rows = []
            for k in range(len(clip)):
                ids = clip.tokens[k][clip.token_mask[k]].tolist()
                rows.append((float(clip.start[k]), float(clip.end[k]), ids[:-1] if ids and ids[-1] == end else ids))
            events.append(rows)
        durations = batch.mask.sum(dim=1).clamp(min=1).tolist()
        targets, target_mask = self.targets(events, durations)
        device = batch.features.device
        return self.sequence_loss(batch.features, batch.mask, targets.to(device), target_mask.to(device))

    def _one_event(self, batch_id: int, prefix: torch.Tensor) -> list[int]:
        """Tokens allowed next when decoding exactly one event: a start, an end no earlier, text (its first token
        not blank), then the end token (forced at the length limit)."""
        step = len(prefix) - 1  # after the decoder start token
        if step == 0:
            return self._time_ids
        if step == 1:
            return self._time_ids[int(prefix[-1]) - self.times.offset:]
        if step == self.cfg.max_tokens - 1:
            return [self.tokenizer.end_id]
        return self._word_ids if step == 2 else self._text_ids + [self.tokenizer.end_id]

    @torch.no_grad()
    def generate(self, features: torch.Tensor, mask: torch.Tensor, one_event: bool = False) -> list[list[int]]:
        """Generated ids per clip (decoder start token removed). `one_event`: decoding constrained to exactly one
        well-formed event (the fallback when a clip's free decoding gives none). Call in eval mode."""
        encoded, enc_mask = self.encode(features, mask)
        constraint = {}
        if one_event and not hasattr(self, "_word_ids"):  # the constraint's token lists, once
            offset, special = self.times.offset, {self.tokenizer.pad_id, self.tokenizer.end_id}
            self._time_ids = list(range(offset, offset + self.times.bins))
            self._text_ids = [i for i in range(offset) if i not in special]
            self._word_ids = [i for i in self._text_ids if self.tokenizer.decode([i]).strip()]  # never blank
        if one_event:
            constraint = {"prefix_allowed_tokens_fn": self._one_event}
        out = self.t5.generate(encoder_outputs=encoded, attention_mask=enc_mask.long(),
                               max_new_tokens=self.cfg.max_tokens, num_beams=self.cfg.beam_size, do_sample=False,
                               eos_token_id=self.tokenizer.end_id, pad_token_id=self.tokenizer.pad_id,
                               decoder_start_token_id=self.tokenizer.pad_id, **constraint)
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
        """Events of one clip, features [T, D] (mask [T], True = real): (events, dropped fragments), each event
        (start, end, caption ids, confidence) with times in samples from the clip's start. A clip whose free
        decoding gives no well-formed event gets one from decoding constrained to one event (our fallback:
        the dense contract wants an event per clip, so that no half goes without predictions)."""
        if mask is None:
            mask = torch.ones(features.shape[0], dtype=torch.bool, device=features.device)
        features, mask = features[None], mask[None]
        duration = max(int(mask.sum()), 1)
        parse = lambda ids: parse_sequence(ids, duration, self.times, self.tokenizer.end_id,
                                           self.tokenizer.pad_id, self.tokenizer.decode)
        ids = self.generate(features, mask)[0]
        parsed = parse(ids)
        dropped = parsed.dropped
        if not parsed.events:
            ids = self.generate(features, mask, one_event=True)[0]
            parsed = parse(ids)
            self.parsing["fallback"] += 1
        if not parsed.events:  # a blank caption even so
            return [], dropped
        log_probs = self.token_log_probs(features, mask, ids)
        return [(e.start, e.end, e.text_ids, float(log_probs[e.first:e.last].mean().exp()))
                for e in parsed.events], dropped

    @torch.no_grad()
    def predict(self, features: torch.Tensor, mask: torch.Tensor | None = None, fps: float = 1.0,
                max_tokens: int = 70) -> list[Event]:
        """The events of one clip (seconds from its start), captions cut to `max_tokens` tokens. Counts of parsed
        events, dropped malformed fragments and clips decoded again constrained to one event accumulate in
        `self.parsing`."""
        self.eval()
        events, dropped = self.predict_clip(features, mask)
        self.parsing["events"] += len(events)
        self.parsing["dropped"] += dropped
        return [Event(centre_s=(start + end) / 2 / fps, start_s=start / fps, end_s=end / fps,
                      caption=self.tokenizer.decode(text[:max_tokens]).strip(), confidence=confidence)
                for start, end, text, confidence in events]
