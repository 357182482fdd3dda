"""The words of an utterance on its timeline (samples from the segment's start, at the output
rate), and the caption lines they make."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...avatar.face.visemes import Phone


@dataclass(frozen=True)
class Word:
    start: int
    end: int
    text: str


@dataclass
class Script:
    """What one segment says, as it is rendered: its phones and its words."""

    phones: list[Phone] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


def timed_words(text: str | None, spoken: list[tuple[int, int]], start: int,
                end: int) -> list[Word]:
    """The words of `text` placed on the spans where words were spoken. When the speech has
    as many spoken words as the text (the usual case), one each; when it has more or fewer
    (a number read out as several words, say), shared out in order; without timings, spread
    over [start, end) by their length."""
    words = (text or "").split()
    if not words or end <= start:
        return []
    if spoken and len(spoken) == len(words):
        return [Word(a, b, w) for (a, b), w in zip(spoken, words, strict=True)]
    if spoken:
        n, m = len(words), len(spoken)
        out = []
        for i, w in enumerate(words):
            lo = min(m - 1, i * m // n)
            hi = max(lo, min(m - 1, (i + 1) * m // n - 1))
            out.append(Word(spoken[lo][0], spoken[hi][1], w))
        return out
    weights = [len(w) + 1 for w in words]
    total = sum(weights)
    out, acc = [], 0
    for w, k in zip(words, weights, strict=True):
        a = start + (end - start) * acc // total
        acc += k
        out.append(Word(a, start + (end - start) * acc // total, w))
    return out


def caption_lines(words: list[Word], max_chars: int) -> list[list[Word]]:
    """Words grouped into lines of at most `max_chars` characters (a longer word stands
    alone); a line also ends after a sentence's last word."""
    lines: list[list[Word]] = []
    current: list[Word] = []
    length = 0
    for w in words:
        extra = len(w.text) + (1 if current else 0)
        if current and length + extra > max_chars:
            lines.append(current)
            current, length, extra = [], 0, len(w.text)
        current.append(w)
        length += extra
        if w.text[-1] in ".!?":
            lines.append(current)
            current, length = [], 0
    if current:
        lines.append(current)
    return lines
