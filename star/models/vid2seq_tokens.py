"""Vid2Seq's output sequence: a clip's events as one token sequence of time tokens and caption text, and back.

Time tokens. N relative time bins are added after the text vocabulary: token `offset + k` stands for the time
k / (N - 1) of the clip's duration. A time t (in frames, 0 <= t <= duration) maps to bin floor(t / duration *
(N - 1)) (Vid2Seq's relative time tokens), times past the clip clamped to its end; a bin maps back to the time at
its left edge, k / (N - 1) * duration. So a round trip moves a time by less than one bin, duration / (N - 1).

Sequence. Events sorted by (start, end), each written as <start> <end> caption tokens, concatenated, then the end
token (Vid2Seq's `se` time format with the time tokens first). An event whose tokens would push the sequence past
`max_tokens` is left out with every later one, so a target never ends inside an event.

Parsing is strict: the generated ids are cut into fragments, each a run of time tokens followed by a run of text
tokens. A fragment is an event only when it has exactly two time tokens, start <= end, and a caption that is not
blank; every other fragment is dropped and counted. A sequence that stopped at the length limit without its end
token has its last fragment dropped too (its caption may be cut short).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TimeTokens:
    offset: int     # id of bin 0: the text vocabulary's size
    bins: int       # N, relative time bins per clip

    def encode(self, time: float, duration: float) -> int:
        """Token of a time (frames) in a clip of `duration` frames."""
        if duration <= 0:
            raise ValueError(f"clip duration must be positive, got {duration}")
        relative = min(max(time / duration, 0.0), 1.0)
        return self.offset + math.floor(relative * (self.bins - 1) + 1e-9)

    def decode(self, token: int, duration: float) -> float:
        """Time (frames) a time token stands for."""
        if not self.is_time(token):
            raise ValueError(f"token {token} is not a time token ({self.offset}..{self.offset + self.bins - 1})")
        return (token - self.offset) / (self.bins - 1) * duration

    def is_time(self, token: int) -> bool:
        return self.offset <= token < self.offset + self.bins


@dataclass(frozen=True)
class ParsedEvent:
    start: float            # frames from the clip's start
    end: float
    text_ids: tuple[int, ...]
    first: int              # position of its start token in the parsed ids
    last: int               # one past its last caption token


@dataclass(frozen=True)
class Parsed:
    events: list[ParsedEvent]
    dropped: int            # malformed fragments left out


def event_sequence(events, duration: float, times: TimeTokens, end_id: int, max_tokens: int) -> list[int]:
    """Target ids of one clip: events = (start, end, caption ids) in frames, sorted here; then `end_id`."""
    ids: list[int] = []
    for start, end, caption in sorted(events, key=lambda e: (e[0], e[1])):
        piece = [times.encode(start, duration), times.encode(end, duration), *caption]
        if len(ids) + len(piece) + 1 > max_tokens:
            break
        ids += piece
    return ids + [end_id]


def parse_sequence(ids, duration: float, times: TimeTokens, end_id: int, pad_id: int,
                   decode_text=None) -> Parsed:
    """Events of generated `ids` (see the module doc). `decode_text(ids) -> str` tells blank captions apart; a
    sequence is finished when it holds `end_id` (what follows it is ignored)."""
    ids = list(ids)
    finished = end_id in ids
    if finished:
        ids = ids[: ids.index(end_id)]
    fragments: list[tuple[int, list[int], list[int]]] = []   # (position, time tokens, text tokens)
    for position, token in enumerate(ids):
        if token == pad_id:
            continue
        if times.is_time(token):
            if not fragments or fragments[-1][2]:  # a time token after text starts a new fragment
                fragments.append((position, [], []))
            fragments[-1][1].append(token)
        else:
            if not fragments:
                fragments.append((position, [], []))
            fragments[-1][2].append(token)
    if not finished and fragments:
        fragments.pop()
        dropped = 1
    else:
        dropped = 0
    events = []
    for index, (position, time_ids, text) in enumerate(fragments):
        last = fragments[index + 1][0] if index + 1 < len(fragments) else len(ids)
        start, end = (times.decode(t, duration) for t in time_ids) if len(time_ids) == 2 else (1.0, 0.0)
        blank = not text or (decode_text is not None and not decode_text(text).strip())
        if len(time_ids) != 2 or start > end or blank:
            dropped += 1
            continue
        events.append(ParsedEvent(start, end, tuple(text), position, last))
    return Parsed(events, dropped)
