"""The words on air as they are spoken: one per segment, filled by its render job as the
speech comes, read by the scene's captions layer (playout/scene/compose.py) on the pacer
thread. A caption line is shown from the frame whose sound holds its first word's first
sample, word by word, until a while after its last word or until the next line begins."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .words import Word, caption_lines

HOLD_S = 1.0  # a line stays this long after its last word ends, unless the next begins


@dataclass(frozen=True)
class Shown:
    """What the captions show on one frame: line `line` of the track, its first `count`
    words (`text`) of all its words (`full`, which the box is laid out for, so words do not
    shift as they appear)."""

    line: int
    count: int
    text: str
    full: str


class CaptionTrack:
    """`add` is the render job's (on the event loop), `shown` the pacer thread's: the lines
    are replaced whole, in one assignment, so a reader sees them before or after a change."""

    def __init__(self, *, spf: int, fps: int, max_chars: int) -> None:
        self._spf = spf
        self._hold = int(HOLD_S * fps * spf)
        self._max_chars = max_chars
        self._words: list[Word] = []
        self._lines: tuple[tuple[list[Word], ...], tuple[int, ...]] = ((), ())

    def add(self, words: list[Word]) -> None:
        if words:
            self._words.extend(words)
            lines = caption_lines(self._words, self._max_chars)
            self._lines = (tuple(lines), tuple(line[0].start for line in lines))

    def shown(self, k: int) -> Shown | None:
        """What shows on frame k of the segment, or None: the last line begun by the end of
        the frame's sound, until a while after its last word."""
        lines, starts = self._lines
        end = (k + 1) * self._spf  # the frame's sound ends here
        i = bisect.bisect_left(starts, end) - 1
        if i < 0:
            return None
        line = lines[i]
        if k * self._spf > line[-1].end + self._hold:
            return None
        count = sum(1 for w in line if w.start < end)
        return Shown(i, count, " ".join(w.text for w in line[:count]),
                     " ".join(w.text for w in line))
