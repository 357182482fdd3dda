"""The synthesizer seam: text in, mono PCM out, one chunk per sentence."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass
class SpeechChunk:
    samples: npt.NDArray[np.float32] | npt.NDArray[np.int16]  # mono
    sample_rate: int


class SpeechError(Exception):
    """A synthesis failure; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Synthesizer(Protocol):
    name: str

    async def load(self) -> None:
        """Load models; called once before the first synthesis."""

    def synthesize(self, text: str, voice: str | None) -> AsyncIterator[SpeechChunk]:
        """Yield audio sentence by sentence."""
        ...

    async def aclose(self) -> None: ...


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
