"""The caption decoder: GPT-2 (transformers) reading a visual prefix, with optional per-block adapters.

Prefix. The video tokens [B, n, d] are projected to GPT-2's width and placed before the caption's token embeddings
in `inputs_embeds`; the loss is the token cross-entropy of the caption (end token included), never of the prefix.

Adapters (our reading of the paper's §3.5, "two lightweight adapter modules into each Transformer block"). The
paper names what the two adapters carry (SSS: spatial detail of the frames; CC: temporal context) but not their
form. We use one adapter type, a Flamingo-style gated cross-attention, instantiated once per context stream in
every block: after block i, the token stream h attends to a stream's context tokens (e.g. the SSS-enhanced local
features [B, T, d] or the Context Capturer latents [B, 8, d], each with a padding mask):

    h <- h + tanh(gate) * W_out Attn(LN(h) W_q, [null; LN(c)] W_k, [null; LN(c)] W_v)

Lightweight: attention in a narrow width (`adapter_dim` << GPT-2 width), no feed-forward. `gate` starts at 0, so
training starts from the plain language model (and a zero gate gives exactly its logits). A learned null key/value
is always attendable, so a fully padded context gives no NaN and the adapter can choose to read nothing. The
adapters are attached with forward hooks on transformers' GPT2Block modules: GPT-2's own code and weight names are
untouched, so pretrained weights load as they are.

Beam search is our own (with GPT-2's KV cache) rather than transformers' `generate`: the adapters need their
context at every step (bound once per search, keys/values computed once), and the scoring is ours to state. From
the 2k best continuations of the k live beams, an end token among the first k finishes a hypothesis (score = sum
of log-probs / length ** length_penalty, the length counting the end token), the first k others live on. A sample
is done when it has k finished hypotheses (fairseq's rule; with k = 1 this is greedy decoding), when no live beam
can still beat its best finished one, or at `max_tokens` (its live beams then finish as they are). The best
finished hypothesis is returned: the same as transformers' `generate(num_beams=k, early_stopping=True)` (tested).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel

from star.errors import InputError
from star.models.decoder_config import DecoderConfig

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class PretrainedWeightsError(InputError):
    """A GPT-2 directory that is missing or lacks its configuration or weights."""


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (HF_HUB_CACHE, else HF_HOME/hub, else
    huggingface_hub's default), so that a variable set after import still counts."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def resolve_gpt2_dir(name: str | Path) -> Path:
    """A local GPT-2 directory, or a hub model id (e.g. `gpt2-medium`) found in the local Hugging Face cache.

    Never the network: the hub lookup is `snapshot_download(..., local_files_only=True)`, as with
    HF_HUB_OFFLINE=1. The error names both places looked in.
    """
    directory = Path(name).expanduser()
    if directory.is_dir():
        return directory
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir()
    try:
        return Path(snapshot_download(str(name), cache_dir=cache, local_files_only=True))
    except (ValueError, OSError):  # not a valid repo id, or no snapshot of it in the cache
        raise PretrainedWeightsError(
            f"GPT-2 directory {directory.resolve()} does not exist and the Hugging Face cache {cache} holds no "
            f"snapshot of a hub model {str(name)!r} (point at a local copy of the model, e.g. gpt2-medium with "
            f"config.json and weights, or set HF_HUB_CACHE / HF_HOME to the cache that holds it; nothing is "
            f"downloaded)") from None


def load_gpt2(name: str | Path) -> GPT2LMHeadModel:
    """GPT-2 from a local directory or the local Hugging Face cache (never the network): config.json +
    model.safetensors/pytorch_model.bin."""
    directory = resolve_gpt2_dir(name)
    if not (directory / "config.json").is_file():
        raise PretrainedWeightsError(f"GPT-2 directory {directory}: config.json is missing")
    if not any((directory / file).is_file() for file in WEIGHT_FILES):
        raise PretrainedWeightsError(f"GPT-2 directory {directory}: no weights ({' or '.join(WEIGHT_FILES)})")
    return GPT2LMHeadModel.from_pretrained(directory, local_files_only=True)


def random_gpt2(cfg: DecoderConfig, vocab_size: int, end_id: int) -> GPT2LMHeadModel:
    """GPT-2 from scratch, its weights N(0, 1 / n_embd) (fan-in) rather than GPT-2's fixed N(0, 0.02).

    0.02 is about 1 / sqrt(width) at GPT-2's own widths (768-1600: 0.036-0.025); at a from-scratch decoder's narrow
    widths (32-128) it shrinks every matrix's output by 0.02 * sqrt(width) = 0.11-0.23, and the embeddings (tied
    to the output layer) with it, so the decoder starts nearly deaf to its prefix and adapters: measured on the
    recall mechanism task (width 32), the caption's decisive logit moved 29x less per unit of latent than with
    fan-in weights, and the captioner never learned a word carried only by its latents (docs/testbed.md).
    """
    config = GPT2Config(
        vocab_size=vocab_size, n_positions=cfg.n_positions, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
        n_head=cfg.n_head, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
        bos_token_id=end_id, eos_token_id=end_id, initializer_range=cfg.n_embd ** -0.5,
    )
    return GPT2LMHeadModel(config)


class GatedCrossAttention(nn.Module):
    """h + tanh(gate) * cross-attention from h [B, S, width] to a context [B, m, context_dim] (see module doc)."""

    def __init__(self, width: int, context_dim: int, inner_dim: int, n_head: int):
        super().__init__()
        assert inner_dim % n_head == 0, "adapter_dim must be a multiple of adapter_heads"
        self.n_head = n_head
        self.norm = nn.LayerNorm(width)
        self.context_norm = nn.LayerNorm(context_dim)
        self.query = nn.Linear(width, inner_dim, bias=False)
        self.key_value = nn.Linear(context_dim, 2 * inner_dim, bias=False)
        self.null_key_value = nn.Parameter(torch.randn(2, 1, inner_dim) * 0.02)
        self.out = nn.Linear(inner_dim, width, bias=False)
        self.gate = nn.Parameter(torch.zeros(()))

    def keys_values(self, context: torch.Tensor, context_mask: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Per-head keys and values [B, heads, 1 + m, e] of a context (the null first) and where to attend
        [B, 1, 1, 1 + m]; computed once per call (and once per beam search), not once per token step."""
        batch = context.shape[0]
        k, v = self.key_value(self.context_norm(context)).chunk(2, dim=-1)     # [B, m, inner] each
        null_k, null_v = self.null_key_value.expand(2, batch, -1).unsqueeze(2)  # [B, 1, inner] each
        k, v = torch.cat([null_k, k], dim=1), torch.cat([null_v, v], dim=1)     # [B, 1 + m, inner]
        if context_mask is None:
            context_mask = torch.ones(context.shape[:2], dtype=torch.bool, device=context.device)
        attendable = F.pad(context_mask.bool(), (1, 0), value=True)            # the null key always
        k, v = (rearrange(t, "b m (h e) -> b h m e", h=self.n_head) for t in (k, v))
        return k, v, attendable[:, None, None, :]

    def forward(self, hidden: torch.Tensor, keys_values: tuple[torch.Tensor, ...]) -> torch.Tensor:
        k, v, attendable = keys_values
        q = rearrange(self.query(self.norm(hidden)), "b s (h e) -> b h s e", h=self.n_head)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=attendable)  # [B, heads, S, e]
        attended = rearrange(attended, "b h s e -> b s (h e)")
        return hidden + torch.tanh(self.gate) * self.out(attended)


Context = torch.Tensor | Sequence[torch.Tensor] | None


def _streams(values: Context, count: int, what: str) -> list:
    """A context (or mask) argument as one entry per adapter stream: a bare tensor is the only stream."""
    if values is None:
        return [None] * count
    values = [values] if isinstance(values, torch.Tensor) else list(values)
    if len(values) != count:
        raise ValueError(f"decoder has {count} adapter stream(s) but got {len(values)} {what}")
    return values


class CaptionDecoder(nn.Module):
    """GPT-2 with a visual prefix and `len(context_dims)` gated cross-attention adapters per block.

    prefix_dim: width of the prefix tokens; context_dims: width of each adapter stream's context (none: plain GPT-2
    with a prefix, as Delta uses it). `end_id` ends generation.
    """

    def __init__(self, cfg: DecoderConfig, vocab_size: int, end_id: int, prefix_dim: int,
                 context_dims: Sequence[int] = ()):
        super().__init__()
        self.cfg, self.end_id = cfg, end_id
        self.gpt = load_gpt2(cfg.pretrained) if cfg.pretrained else random_gpt2(cfg, vocab_size, end_id)
        if self.gpt.config.vocab_size != vocab_size:
            raise PretrainedWeightsError(f"GPT-2 in {cfg.pretrained} has a vocabulary of {self.gpt.config.vocab_size}"
                                         f" tokens but the tokenizer has {vocab_size}: use GPT-2's own tokenizer")
        width = self.gpt.config.n_embd
        self.prefix_proj = nn.Linear(prefix_dim, width)
        blocks = self.gpt.transformer.h
        self.adapters = nn.ModuleList(
            nn.ModuleList(GatedCrossAttention(width, dim, cfg.adapter_dim, cfg.adapter_heads) for dim in context_dims)
            for _ in blocks
        )
        self._bound: list[list[tuple[torch.Tensor, ...]]] | None = None  # per block and stream: keys_values
        if context_dims:
            for i, block in enumerate(blocks):
                block.register_forward_hook(partial(self._adapt, i))

    @property
    def n_streams(self) -> int:
        return len(self.adapters[0]) if len(self.adapters) else 0

    def _adapt(self, index: int, block: nn.Module, args, hidden: torch.Tensor) -> torch.Tensor:
        """Forward hook on GPT-2 block `index`: run its adapters on the block's output."""
        if self._bound is None:
            raise RuntimeError("decoder with adapters called without context")
        for adapter, keys_values in zip(self.adapters[index], self._bound[index], strict=True):
            hidden = adapter(hidden, keys_values)
        return hidden

    @contextmanager
    def _attending(self, context: Context, context_mask: Context):
        """Make the context streams visible to the block hooks for the calls inside the `with`."""
        contexts = _streams(context, self.n_streams, "contexts")
        masks = _streams(context_mask, self.n_streams, "context masks")
        if any(c is None for c in contexts):
            raise ValueError(f"decoder has {self.n_streams} adapter stream(s): give a context for each")
        self._bound = [[adapter.keys_values(c, m) for adapter, c, m in zip(block, contexts, masks, strict=True)]
                       for block in self.adapters]
        try:
            yield
        finally:
            self._bound = None

    def _check_length(self, positions: int) -> None:
        if positions > self.gpt.config.n_positions:
            raise ValueError(f"prefix + caption need {positions} positions; GPT-2 has {self.gpt.config.n_positions}"
                             " (raise n_positions, or lower max_tokens)")

    def token_logits(self, prefix: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor,
                     context: Context = None, context_mask: Context = None) -> torch.Tensor:
        """Logits [B, L, V] where [:, i] predicts tokens[:, i] (from the prefix and tokens before i)."""
        n = prefix.shape[1]
        self._check_length(n + tokens.shape[1])
        embeds = torch.cat([self.prefix_proj(prefix), self.gpt.transformer.wte(tokens)], dim=1)  # [B, n + L, W]
        attention_mask = F.pad(token_mask.long(), (n, 0), value=1)                            # [B, n + L]
        with self._attending(context, context_mask):
            hidden = self.gpt.transformer(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        # position n - 1 + i predicts token i: the prefix positions predict nothing but the first token
        return self.gpt.lm_head(hidden[:, n - 1 : -1])

    def forward(self, prefix: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor,
                context: Context = None, context_mask: Context = None) -> torch.Tensor:
        """Mean cross-entropy over the caption tokens where token_mask (the end token included).

        prefix [B, n, prefix_dim]; tokens/token_mask [B, L]; context: one [B, m_s, d_s] tensor per adapter stream
        (a bare tensor for one stream), context_mask: matching bool [B, m_s] (True = real) or None.
        """
        logits = self.token_logits(prefix, tokens, token_mask, context, context_mask)
        return F.cross_entropy(logits[token_mask], tokens[token_mask])

    @torch.no_grad()
    def generate(self, prefix: torch.Tensor, context: Context = None, context_mask: Context = None,
                 beam_size: int = 4, max_tokens: int = 64) -> list[list[int]]:
        """Beam search from the prefix: per sample the best token list (without the end token). Call in eval mode
        (dropout would make it random)."""
        batch, k = prefix.shape[0], beam_size
        self._check_length(prefix.shape[1] + max_tokens)
        contexts = [None if c is None else c.repeat_interleave(k, dim=0)  # beams of sample b: rows b*k .. b*k+k-1
                    for c in _streams(context, self.n_streams, "contexts")]
        masks = [None if m is None else m.repeat_interleave(k, dim=0)
                 for m in _streams(context_mask, self.n_streams, "context masks")]
        cache = DynamicCache(config=self.gpt.config)
        first = self.prefix_proj(prefix).repeat_interleave(k, dim=0)  # [B*k, n, W]

        def step(last_tokens: torch.Tensor | None, origin: torch.Tensor | None) -> torch.Tensor:
            if last_tokens is None:
                embeds = first
            else:  # beam_search keeps its bookkeeping on the CPU
                cache.reorder_cache(origin.to(prefix.device))
                embeds = self.gpt.transformer.wte(last_tokens.to(prefix.device))[:, None]  # [B*k, 1, W]
            hidden = self.gpt.transformer(inputs_embeds=embeds, cache=cache, use_cache=True).last_hidden_state
            return torch.log_softmax(self.gpt.lm_head(hidden[:, -1]).float(), dim=-1)  # [B*k, V]

        with self._attending(contexts, masks):
            return beam_search(step, batch, k, max_tokens, self.end_id, self.cfg.length_penalty)


def beam_search(step: Callable[[torch.Tensor | None, torch.Tensor | None], torch.Tensor], batch: int,
                beam_size: int, max_tokens: int, end_id: int, length_penalty: float = 1.0) -> list[list[int]]:
    """Beam search over `batch` samples with `beam_size` beams each (see the module doc for the scheme).

    step(last_tokens, origin) -> log-probs [batch * beam_size, V] of the next token for every beam row; before a
    call the rows are reordered so that new row r continues old row origin[r] (first call: both None, all beams of
    a sample identical).
    """
    k = beam_size
    scores = torch.full((batch, k), float("-inf"))
    scores[:, 0] = 0.0                                # identical beams at first: expand only one
    sequences = torch.zeros((batch * k, 0), dtype=torch.long)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = [False] * batch
    last_tokens = origin = None

    def best_reachable(score: float, t: int) -> float:
        # a live beam of t + 1 tokens ends with length t + 2 .. max_tokens, and adds log-probs <= 0: at best it
        # keeps its score, normalised by the most favourable of those lengths
        return max(score / (t + 2) ** length_penalty, score / max_tokens ** length_penalty)

    for t in range(max_tokens):
        log_probs = step(last_tokens, origin).cpu()
        vocab = log_probs.shape[1]
        candidates = (scores.view(-1, 1) + log_probs).view(batch, k * vocab)   # [B, k*V]
        top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=1)  # [B, 2k]
        top_beams, top_tokens = top_index // vocab, top_index % vocab
        next_scores = torch.full((batch, k), float("-inf"))
        next_rows = torch.arange(batch * k).view(batch, k) // k * k   # done samples: any row of their own
        next_tokens = torch.full((batch, k), end_id, dtype=torch.long)
        ranked = zip(top_scores.tolist(), top_beams.tolist(), top_tokens.tolist(), strict=True)
        for b, (sample_scores, sample_beams, sample_tokens) in enumerate(ranked):
            if done[b]:
                continue
            alive = 0
            for rank, (score, beam, token) in enumerate(zip(sample_scores, sample_beams, sample_tokens, strict=True)):
                if score == float("-inf"):
                    break
                row = b * k + beam
                if token == end_id:
                    if rank < k:
                        finished[b].append((score / (t + 1) ** length_penalty, sequences[row].tolist()))
                elif alive < k:
                    if t == max_tokens - 1:  # out of tokens: the live beams finish as they are
                        finished[b].append((score / max_tokens ** length_penalty, sequences[row].tolist() + [token]))
                    next_scores[b, alive], next_rows[b, alive], next_tokens[b, alive] = score, row, token
                    alive += 1
            done[b] = (alive == 0 or len(finished[b]) >= k
                       or bool(finished[b]) and max(finished[b])[0] >= best_reachable(next_scores[b, 0].item(), t))
        origin, last_tokens = next_rows.view(-1), next_tokens.view(-1)
        sequences = torch.cat([sequences[origin], last_tokens[:, None]], dim=1)  # [B*k, t + 1]
        scores = next_scores
        if all(done):
            break
    return [max(hyps, key=lambda h: h[0])[1] if hyps else [] for hyps in finished]
