"""SDVC's word vocabulary: whole words from the train captions, kept when seen at least `min_freq` times.

It has the interface of star.models.tokenizer.Tokenizer (encode / decode / encode_batch / save / load, `end_id`,
`pad_id`, `vocab_size`), so datasets and inference treat both alike; `bos_id` starts SDVC's LSTM.

Words are split off punctuation, and the anonymisation placeholders ([PLAYER], [TEAM], [COACH], [REFEREE]) stay
single words; case is kept. Rarer words map to <unk>. Decoding joins words with spaces and re-attaches
punctuation, so "[PLAYER] ([TEAM]) scores." round-trips.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence

from star.errors import InputError
from star.provenance import write_text_atomic

PAD, BOS, END, UNK = "<pad>", "<bos>", "<end>", "<unk>"
SPECIALS = (PAD, BOS, END, UNK)
VOCAB_FILE = "vocab.json"

# a placeholder, a clitic after one ("[PLAYER]'s"), a word (with inner hyphens/apostrophes: "4-4", "it's"),
# or one punctuation mark
_WORD = re.compile(r"\[[A-Z]+\]|['’]\w+|\w+(?:['’-]\w+)*|[^\w\s]")


def split_words(text: str) -> list[str]:
    return _WORD.findall(text)


def join_words(words: Iterable[str]) -> str:
    text = " ".join(words)
    text = re.sub(r" ([.,;:!?)]|['’]\w)", r"\1", text)  # no space before closing punctuation or a clitic
    return re.sub(r"\( ", "(", text)


class VocabError(InputError):
    """A vocabulary file that is missing or malformed."""


class WordVocab:
    kind = "words"

    def __init__(self, words: Iterable[str]):
        self.words = [*SPECIALS, *(w for w in words if w not in SPECIALS)]
        self.index = {word: i for i, word in enumerate(self.words)}
        self.pad_id, self.bos_id, self.end_id, self.unk_id = (self.index[s] for s in SPECIALS)

    @classmethod
    def build(cls, captions: Iterable[str], min_freq: int) -> WordVocab:
        """Words of `captions` seen at least `min_freq` times, most frequent first (ties alphabetical)."""
        counts = Counter(word for caption in captions for word in split_words(caption))
        kept = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        return cls(kept)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        """Caption -> word ids (unknown words -> <unk>), without the end token."""
        return [self.index.get(word, self.unk_id) for word in split_words(text)]

    def encode_batch(self, texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (tokens [B, L] long, mask [B, L] bool): each cut to `max_tokens - 1` words, then <end>;
        right-padded with <pad> to the longest in the batch."""
        rows = [torch.tensor(self.encode(text)[: max_tokens - 1] + [self.end_id]) for text in texts]
        tokens = pad_sequence(rows, batch_first=True, padding_value=self.pad_id)
        mask = pad_sequence([torch.ones(len(r), dtype=torch.bool) for r in rows], batch_first=True)
        return tokens, mask

    def decode(self, ids: Iterable[int]) -> str:
        """Word ids -> text, up to the first <end>; <pad> and <bos> are dropped."""
        words = []
        for i in ids:
            if i == self.end_id:
                break
            if i not in (self.pad_id, self.bos_id):
                words.append(self.words[i])
        return join_words(words)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / VOCAB_FILE
        write_text_atomic(path, json.dumps({"words": self.words[len(SPECIALS):]}, ensure_ascii=False, indent=0))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> WordVocab:
        path = Path(directory) / VOCAB_FILE
        try:
            words = json.loads(path.read_text())["words"]
        except FileNotFoundError:
            raise VocabError(f"{path}: SDVC word vocabulary not found") from None
        except (ValueError, KeyError, TypeError) as err:
            raise VocabError(f"{path}: not a word vocabulary ({err})") from None
        return cls(words)
