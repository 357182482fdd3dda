"""The synthesizer seam: text in, mono PCM out, one chunk per sentence."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Alignment = list[tuple[str, int]]  # (phoneme, samples), in order; sums to the chunk's length


@dataclass
class SpeechChunk:
    samples: npt.NDArray[np.float32] | npt.NDArray[np.int16]  # mono
    sample_rate: int
    alignment: Alignment | None = None  # None: the provider gives no phoneme timings
    text: str | None = None  # the words this chunk speaks, where the provider knows them
    last: bool = False  # the text's last chunk (False where the provider cannot tell)


@dataclass
class Spoken:
    """A chunk at the stream's rate, its phoneme timings scaled to match."""

    pcm: npt.NDArray[np.int16]
    alignment: Alignment | None = None
    text: str | None = None
    last: bool = False  # nothing follows it: the utterance's audio is complete
    # On an utterance's first chunk: why it is not in the voice asked for (that voice's
    # provider failed, the next one speaks in its own voice).
    fallback: str | None = None


def rescale_alignment(alignment: Alignment, total: int) -> Alignment:
    """The same phonemes over `total` samples (after resampling), boundaries rounded so that
    the durations still add up exactly."""
    durations = np.array([n for _, n in alignment], np.float64)
    src_total = float(durations.sum())
    if src_total <= 0:
        return []
    bounds = np.round(np.cumsum(durations) * (total / src_total)).astype(np.int64)
    bounds[-1] = total
    sizes = np.diff(np.concatenate([[0], bounds]))
    return [(ph, int(n)) for (ph, _), n in zip(alignment, sizes, strict=True)]


class SpeechError(Exception):
    """A synthesis failure; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Synthesizer(Protocol):
    name: str

    async def load(self) -> None:
        """Load models; called once before the first synthesis."""

    def knows(self, voice: str) -> bool:
        """Whether `voice` is one of this provider's (after load)."""
        ...

    def synthesize(self, text: str, voice: str | None) -> AsyncIterator[SpeechChunk]:
        """Yield audio sentence by sentence."""
        ...

    async def aclose(self) -> None: ...


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[,\u2014\u2013)])\s+")
# Synthesis memory grows with the length of what is synthesized at once (a VITS voice holds
# activations for the whole utterance), so no piece is longer than this, however the text is
# punctuated.
MAX_PIECE_CHARS = 300


def split_sentences(text: str) -> list[str]:
    """Sentences, and any sentence longer than MAX_PIECE_CHARS cut at clauses, then words."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if sentence and sentence.strip():
            pieces.extend(_bounded(sentence.strip()))
    return pieces


def pieces_of(text: str) -> Iterator[tuple[str, bool]]:
    """split_sentences(text), each piece with whether it is the text's last."""
    pieces = split_sentences(text)
    for i, piece in enumerate(pieces, 1):
        yield piece, i == len(pieces)


def _bounded(sentence: str) -> list[str]:
    if len(sentence) <= MAX_PIECE_CHARS:
        return [sentence]
    out: list[str] = []
    current = ""
    for part in _CLAUSE_END.split(sentence) if _CLAUSE_END.search(sentence) else sentence.split():
        joined = f"{current} {part}".strip()
        if len(joined) <= MAX_PIECE_CHARS:
            current = joined
            continue
        if current:
            out.append(current)
        while len(part) > MAX_PIECE_CHARS:  # a clause or a "word" too long on its own
            cut = part.rfind(" ", 0, MAX_PIECE_CHARS)
            cut = cut if cut > 0 else MAX_PIECE_CHARS
            out.append(part[:cut].strip())
            part = part[cut:].strip()
        current = part
    if current:
        out.append(current)
    return out
