"""PDVC (Wang et al., "End-to-End Dense Video Captioning with Parallel Decoding", ICCV 2021): a deformable transformer
whose event queries are decoded in parallel into segments, an event count and captions, trained with a set loss.

    clip features [b, t, d] -> (PDVC rescales to `frames` positions) -> multi-scale pyramid (1x1 conv, then stride-2
    convs; GroupNorm) -> deformable encoder (self-attention over all levels) -> N event queries through the
    deformable decoder (self-attention, then deformable attention around each query's reference point; every
    layer refines the segment, "box refine") -> heads on the queries: event or not (focal), segment (centre,
    length), caption (an LSTM fed the query's feature with every word: PDVC's "light" captioner), and over all
    queries the event counter (how many events the clip holds).
    Ours, not PDVC's: a label head (the dataset's caption labels) so the spotting metrics get a label.

Training: per clip, the last layer's queries are matched to the clip's events by the Hungarian algorithm
(star.models.set_loss, costs: focal classification, L1, GIoU); every decoder layer adds classification, L1 and GIoU
losses on its own matching (auxiliary losses); the last layer adds caption cross-entropy, label cross-entropy on
the matched queries, and the counter's cross-entropy. Inference (`predict`): every query's caption is generated
greedily; queries are ranked by log P(event) + `ec_alpha` x the caption's mean token log-probability, and the
counter's number of them is kept (at least one, as PDVC).

Shape legend: b clips, t samples, s tokens of all levels, q queries, c width, e events of a clip, n matched
queries, L tokens, v vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from star.models.deformable import (DeformableAttention, encoder_references, sine_positions, valid_ratios)
from star.models.dense import DenseBatch, Event
from star.models.set_loss import (MatchCosts, generalized_iou, hungarian_match, segments_to_bounds,
                                  sigmoid_focal_loss)


@dataclass
class PDVCConfig:
    # clips (star.models.dense): what the model reads at once, and how a half is covered
    clip_s: float = 120.0           # PDVC reads a whole ActivityNet video (~2 min); a SoccerNet half is 45 min
    train_stride_s: float = 30.0    # training clips start every this many seconds
    infer_stride_s: float = 60.0    # inference clips overlap by clip_s - infer_stride_s
    event_s: float = 10.0           # training segment of a point annotation, centred on it
    nms_window_s: float = 10.0      # merging clips: events within half of this of a more confident one are dropped
    frames: int | None = 100        # PDVC rescales every video's features to 100 positions; None: keep the rate
    # transformer (PDVC's ActivityNet config)
    width: int = 512
    levels: int = 4                 # feature pyramid levels (each half the previous one's length)
    heads: int = 8
    points: int = 4                 # sampling points per head and level
    enc_layers: int = 2
    dec_layers: int = 2
    ff: int = 512
    dropout: float = 0.1
    queries: int = 10
    max_events: int = 10            # the counter's largest class
    labels: int = 13                # label head classes: the dataset's caption labels (set by training)
    # captioner ("light": an LSTM fed the query's feature and the previous word)
    rnn_hidden: int = 512
    word_emb: int = 512
    rnn_layers: int = 1
    caption_dropout: float = 0.5
    min_word_freq: int = 5          # word vocabulary of the train captions (as SDVC's)
    # set loss: matching costs and loss weights
    cost_class: float = 2.0
    cost_l1: float = 0.0
    cost_giou: float = 4.0
    cls_coef: float = 2.0
    l1_coef: float = 0.0
    giou_coef: float = 4.0
    count_coef: float = 0.5
    caption_coef: float = 2.0
    label_coef: float = 1.0         # ours: the label head
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    ec_alpha: float = 1.0           # weight of the caption score in the ranking (PDVC's C3D config)

    @classmethod
    def paper(cls) -> PDVCConfig:
        return cls()

    @classmethod
    def tiny(cls) -> PDVCConfig:
        """CPU-sized: 60-s clips at the features' own rate, a 64-wide two-level transformer, a small LSTM."""
        return cls(clip_s=60.0, train_stride_s=15.0, infer_stride_s=30.0, frames=None, width=64, levels=2, heads=4,
                   points=2, enc_layers=1, dec_layers=2, ff=128, queries=8, max_events=8, rnn_hidden=128,
                   word_emb=64, caption_dropout=0.1, min_word_freq=2)


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


class Pyramid(nn.Module):
    """Clip features [b, t, d] -> `levels` maps of width c, level k of length ceil(t / 2^k), with their masks."""

    def __init__(self, feature_dim: int, cfg: PDVCConfig):
        super().__init__()
        groups = min(32, cfg.width)
        convs = [nn.Conv1d(feature_dim, cfg.width, 1)]
        convs += [nn.Conv1d(feature_dim if k == 1 else cfg.width, cfg.width, 3, stride=2, padding=1)
                  for k in range(1, cfg.levels)]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(nn.GroupNorm(groups, cfg.width) for _ in range(cfg.levels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        x = x.transpose(1, 2)  # [b, d, t]
        maps, masks, previous = [], [], x
        for k, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            out = norm(conv(x if k <= 1 else previous))
            previous = out
            maps.append(out.transpose(1, 2))  # [b, t_k, c]
            masks.append(F.interpolate(mask[:, None].float(), size=out.shape[-1], mode="nearest")[:, 0] > 0.5)
        return maps, masks


class EncoderLayer(nn.Module):
    def __init__(self, cfg: PDVCConfig):
        super().__init__()
        self.attn = DeformableAttention(cfg.width, cfg.heads, cfg.levels, cfg.points)
        self.ff = nn.Sequential(nn.Linear(cfg.width, cfg.ff), nn.ReLU(), nn.Dropout(cfg.dropout),
                                nn.Linear(cfg.ff, cfg.width))
        self.norm1, self.norm2 = nn.LayerNorm(cfg.width), nn.LayerNorm(cfg.width)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, pos, reference, lengths, valid):
        x = self.norm1(x + self.drop(self.attn(x + pos, reference, x, lengths, valid)))
        return self.norm2(x + self.drop(self.ff(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: PDVCConfig):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(cfg.width, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.cross = DeformableAttention(cfg.width, cfg.heads, cfg.levels, cfg.points)
        self.ff = nn.Sequential(nn.Linear(cfg.width, cfg.ff), nn.ReLU(), nn.Dropout(cfg.dropout),
                                nn.Linear(cfg.ff, cfg.width))
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.width) for _ in range(3))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, tgt, query_pos, reference, memory, lengths, valid):
        q = tgt + query_pos
        tgt = self.norms[0](tgt + self.drop(self.self_attn(q, q, tgt, need_weights=False)[0]))
        tgt = self.norms[1](tgt + self.drop(self.cross(tgt + query_pos, reference, memory, lengths, valid)))
        return self.norms[2](tgt + self.drop(self.ff(tgt)))


def mlp(width: int, out: int, layers: int = 3) -> nn.Sequential:
    blocks = []
    for _ in range(layers - 1):
        blocks += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(width, out))


class CaptionLSTM(nn.Module):
    """PDVC's light captioner: an LSTM whose input at each step is the previous word's embedding and the event
    query's feature."""

    def __init__(self, cfg: PDVCConfig, vocab):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab.vocab_size, cfg.word_emb, padding_idx=vocab.pad_id)
        self.lstm = nn.LSTM(cfg.word_emb + cfg.width, cfg.rnn_hidden, cfg.rnn_layers, batch_first=True)
        self.drop = nn.Dropout(cfg.caption_dropout)
        self.to_words = nn.Linear(cfg.rnn_hidden, vocab.vocab_size)
        banned = torch.zeros(vocab.vocab_size, dtype=torch.bool)
        banned[[vocab.pad_id, vocab.bos_id, vocab.unk_id]] = True
        self.register_buffer("banned", banned, persistent=False)

    def step(self, words: torch.Tensor, feature: torch.Tensor, state=None):
        """words [n, L], feature [n, c] -> (logits [n, L, v], state)."""
        inputs = torch.cat([self.embed(words), feature[:, None].expand(-1, words.shape[1], -1)], dim=-1)
        hidden, state = self.lstm(inputs, state)
        return self.to_words(self.drop(hidden)), state

    def loss(self, feature: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced token cross-entropy (mean over real tokens) of captions [n, L] given features [n, c]."""
        bos = torch.full_like(tokens[:, :1], self.vocab.bos_id)
        logits, _ = self.step(torch.cat([bos, tokens[:, :-1]], dim=1), feature)
        return F.cross_entropy(logits[mask].float(), tokens[mask])

    @torch.no_grad()
    def generate(self, feature: torch.Tensor, max_tokens: int) -> tuple[list[str], torch.Tensor]:
        """Greedy captions of features [n, c] and their mean token log-probability [n]."""
        n = feature.shape[0]
        word = torch.full((n, 1), self.vocab.bos_id, dtype=torch.long, device=feature.device)
        state, steps = None, []
        total = torch.zeros(n, device=feature.device)
        count = torch.zeros(n, device=feature.device)
        finished = torch.zeros(n, dtype=torch.bool, device=feature.device)
        for _ in range(max_tokens):
            logits, state = self.step(word, feature, state)
            logp = logits[:, -1].float().masked_fill(self.banned, -torch.inf).log_softmax(-1)
            best, word = logp.max(-1, keepdim=True)
            total += torch.where(finished, 0.0, best[:, 0])
            count += (~finished).float()
            steps.append(word)
            finished |= word[:, 0] == self.vocab.end_id
            if finished.all():
                break
        ids = torch.cat(steps, dim=1).tolist()
        return [self.vocab.decode(row) for row in ids], total / count.clamp(min=1)


class PDVC(nn.Module):
    def __init__(self, cfg: PDVCConfig, feature_dim: int, vocab):
        super().__init__()
        self.cfg, self.vocab = cfg, vocab
        self.pyramid = Pyramid(feature_dim, cfg)
        self.level_embed = nn.Parameter(torch.randn(cfg.levels, cfg.width) * 0.02)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.dec_layers))
        self.query_embed = nn.Embedding(cfg.queries, 2 * cfg.width)  # (position, content) of each query
        self.reference = nn.Linear(cfg.width, 1)                     # a query's first reference point
        self.classify = nn.ModuleList(nn.Linear(cfg.width, 1) for _ in range(cfg.dec_layers))
        self.segment = nn.ModuleList(mlp(cfg.width, 2) for _ in range(cfg.dec_layers))
        self.count = nn.Linear(cfg.width, cfg.max_events + 1)
        self.label = nn.Linear(cfg.width, cfg.labels)
        self.captioner = CaptionLSTM(cfg, vocab)
        self.costs = MatchCosts(cfg.cost_class, cfg.cost_l1, cfg.cost_giou, cfg.focal_alpha, cfg.focal_gamma)
        for head in self.classify:  # prior P(event) = 0.01, as DETR-style detectors start
            nn.init.constant_(head.bias, -4.595)
        for head in self.segment:
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def decode(self, features: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """features [b, t, d], mask [b, t] -> per decoder layer: logits [k, b, q], segments [k, b, q, 2]; the last
        layer's query features [b, q, c] and the counter's logits [b, max_events + 1]."""
        cfg = self.cfg
        if cfg.frames and features.shape[1] != cfg.frames:  # PDVC's fixed number of positions per video
            features = F.interpolate(features.transpose(1, 2), size=cfg.frames, mode="linear",
                                     align_corners=False).transpose(1, 2)
            mask = F.interpolate(mask[:, None].float(), size=cfg.frames, mode="nearest")[:, 0] > 0.5
        maps, masks = self.pyramid(features, mask)
        lengths = [m.shape[1] for m in maps]
        ratios = valid_ratios(masks)  # [b, l]
        source = torch.cat(maps, 1)   # [b, s, c]
        valid = torch.cat(masks, 1)   # [b, s]
        pos = torch.cat([sine_positions(m, cfg.width) + self.level_embed[k] for k, m in enumerate(masks)], 1)
        reference = encoder_references(lengths, ratios)  # [b, s, l]
        memory = source
        for layer in self.encoder:
            memory = layer(memory, pos, reference, lengths, valid)

        b = features.shape[0]
        query_pos, tgt = self.query_embed.weight.split(cfg.width, dim=1)
        query_pos, tgt = query_pos[None].expand(b, -1, -1), tgt[None].expand(b, -1, -1)
        centre = self.reference(query_pos).sigmoid()[..., 0]  # [b, q]
        logits, segments = [], []
        for k, layer in enumerate(self.decoder):
            tgt = layer(tgt, query_pos, centre[..., None] * ratios[:, None], memory, lengths, valid)
            delta = self.segment[k](tgt)  # refine: centre relative to the reference, length absolute
            segment = torch.stack([delta[..., 0] + inverse_sigmoid(centre), delta[..., 1]], dim=-1).sigmoid()
            logits.append(self.classify[k](tgt)[..., 0])
            segments.append(segment)
            centre = segment[..., 0].detach()
        return {"logits": torch.stack(logits), "segments": torch.stack(segments), "queries": tgt,
                "count": self.count(tgt.max(dim=1).values)}

    def forward(self, batch: DenseBatch) -> torch.Tensor:
        """The set loss of a batch of clips (scalar)."""
        cfg, out = self.cfg, self.decode(batch.features, batch.mask)
        t = batch.features.shape[1]
        targets = [torch.stack([e.centre / t, (e.end - e.start) / t], dim=-1) for e in batch.events]
        n_events = max(1, sum(len(e) for e in batch.events))
        loss = out["logits"].new_zeros(())
        for k in range(cfg.dec_layers):
            logits, segments = out["logits"][k], out["segments"][k]
            is_event = torch.zeros_like(logits)
            l1 = giou = logits.new_zeros(())
            matches = []
            for i, target in enumerate(targets):
                rows, cols = hungarian_match(logits[i], segments[i], target, self.costs)
                rows, cols = rows.to(logits.device), cols.to(logits.device)
                matches.append((rows, cols))
                is_event[i, rows] = 1.0
                l1 = l1 + (segments[i, rows] - target[cols]).abs().sum()
                pairs = generalized_iou(segments_to_bounds(segments[i, rows]), segments_to_bounds(target[cols]))
                giou = giou + (1 - pairs.diagonal()).sum()
            focal = sigmoid_focal_loss(logits, is_event, cfg.focal_alpha, cfg.focal_gamma)
            loss = loss + (cfg.cls_coef * focal + cfg.l1_coef * l1 + cfg.giou_coef * giou) / n_events
        # the last layer's matches: captions, labels, and the counter
        queries = torch.cat([out["queries"][i, rows] for i, (rows, _) in enumerate(matches)])
        if len(queries):
            labels = torch.cat([e.label[cols] for e, (_, cols) in zip(batch.events, matches, strict=True)])
            width = max(e.tokens.shape[1] for e in batch.events)
            tokens = torch.cat([F.pad(e.tokens[cols], (0, width - e.tokens.shape[1]), value=self.vocab.pad_id)
                                for e, (_, cols) in zip(batch.events, matches, strict=True)])
            token_mask = torch.cat([F.pad(e.token_mask[cols], (0, width - e.token_mask.shape[1]))
                                    for e, (_, cols) in zip(batch.events, matches, strict=True)])
            loss = loss + cfg.caption_coef * self.captioner.loss(queries, tokens, token_mask)
            loss = loss + cfg.label_coef * F.cross_entropy(self.label(queries).float(), labels)
        else:  # a batch without events: the heads still take part (a zero gradient), as DistributedDataParallel needs
            heads = [*self.captioner.parameters(), *self.label.parameters()]
            loss = loss + 0.0 * sum(p.sum() for p in heads)
        counts = torch.tensor([min(len(e), cfg.max_events) for e in batch.events], device=loss.device)
        return loss + cfg.count_coef * F.cross_entropy(out["count"].float(), counts)

    @torch.no_grad()
    def candidates(self, features: torch.Tensor, mask: torch.Tensor | None, fps: float,
                   max_tokens: int = 70) -> tuple[list[Event], int]:
        """Every query of one clip as an Event (seconds from the clip's start), best ranked first, and the counter's
        number of events."""
        if mask is None:
            mask = torch.ones(features.shape[0], dtype=torch.bool, device=features.device)
        out = self.decode(features[None], mask[None])
        prob = out["logits"][-1, 0].float().sigmoid()  # [q]
        segments = out["segments"][-1, 0].float()      # [q, 2]
        captions, caption_score = self.captioner.generate(out["queries"][0], max_tokens)
        rank = prob.clamp(min=1e-8).log() + self.cfg.ec_alpha * caption_score
        labels = self.label(out["queries"][0]).argmax(-1)
        clip_s = features.shape[0] / fps
        bounds = segments_to_bounds(segments) * clip_s
        events = [Event(centre_s=float(segments[j, 0]) * clip_s, start_s=float(bounds[j, 0]),
                        end_s=float(bounds[j, 1]), caption=captions[j], confidence=float(prob[j]),
                        label=int(labels[j])) for j in rank.argsort(descending=True).tolist()]
        return events, max(1, int(out["count"][0].argmax()))

    def predict(self, features: torch.Tensor, mask: torch.Tensor | None = None, fps: float = 1.0,
                max_tokens: int = 70) -> list[Event]:
        """The events of one clip [t, d]: the counter's number of best-ranked queries."""
        self.eval()
        events, count = self.candidates(features, mask, fps, max_tokens)
        return events[:count]


__all__ = ["PDVC", "PDVCConfig"]
