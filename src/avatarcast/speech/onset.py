"""The start of an utterance: voices put silence before the first phoneme (piper about 25 ms of
digital zero, then a breath), and every millisecond of it delays a message's first sound on
air. It is trimmed to a short lead-in, and the phoneme timings move with it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .base import Alignment, SpeechChunk

LEAD_IN_S = 0.005
"""Silence kept before the first window that carries sound."""
WINDOW_S = 0.005
LEVEL = 0.001
"""RMS, of full scale, that counts as sound (-60 dBFS: a breath before a word is above it)."""


def _first_sound(samples: np.ndarray, rate: int) -> int | None:
    """Where the sound starts: the first sample at or above LEVEL in or just before the first
    window whose RMS is (a lone click in the silence does not count); None if no window is."""
    w = max(1, round(rate * WINDOW_S))
    whole = len(samples) // w
    if whole == 0:
        return None
    x = samples[: whole * w].astype(np.float32)
    if samples.dtype == np.int16:
        x /= 32768.0
    loud = np.flatnonzero(np.sqrt(np.mean((x * x).reshape(whole, w), axis=1)) >= LEVEL)
    if not loud.size:
        return None
    lo = max(0, int(loud[0]) - 1) * w
    above = np.flatnonzero(np.abs(x[lo: lo + 2 * w]) >= LEVEL)
    return lo + int(above[0]) if above.size else int(loud[0]) * w


def _shift(alignment: Alignment, cut: int) -> Alignment:
    """The timings without their first `cut` samples: leading phonemes shrink, and those left
    with nothing drop out."""
    out: Alignment = []
    for phoneme, n in alignment:
        take = min(cut, n)
        cut -= take
        if n - take > 0:
            out.append((phoneme, n - take))
    return out


def trim_lead_in(chunk: SpeechChunk) -> SpeechChunk:
    """`chunk` with its leading silence cut to LEAD_IN_S; the same chunk when there is nothing
    to cut (sound from the start, or no sound at all)."""
    start = _first_sound(chunk.samples, chunk.sample_rate)
    if start is None:
        return chunk
    cut = start - round(LEAD_IN_S * chunk.sample_rate)
    if cut <= 0:
        return chunk
    alignment = _shift(chunk.alignment, cut) if chunk.alignment else chunk.alignment
    return replace(chunk, samples=chunk.samples[cut:], alignment=alignment)
