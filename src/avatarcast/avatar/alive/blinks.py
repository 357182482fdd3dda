"""When the eyes blink, and how far closed they are on each frame.

Intervals between blinks are drawn from a shifted log-normal (right-skewed, as people's are:
mostly a few seconds, sometimes long, never a metronome), at a rate that depends on what the
face is doing; one blink in ten is doubled. A blink closes fast (about 90 ms), stays shut for at
least one frame, and opens about twice as slowly. Speech asks for blinks at its pauses and
after a long sentence; a glance away brings one with it. Deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

_SHIFT_S = 0.6  # no interval is shorter than this (a double blink's second excepted)
_SIGMA = 0.65  # spread of the log-normal part
_DOUBLE = 0.1  # share of blinks followed at once by a second
_MIN_ASKED_GAP_S = 1.2  # a blink asked for by speech or gaze waits this long after the last


@dataclass
class _Blink:
    start: float  # seconds
    close_s: float
    open_s: float
    hold_s: float

    @property
    def end(self) -> float:
        return self.start + self.close_s + self.hold_s + self.open_s

    def closure(self, t: float) -> float:
        u = t - self.start
        if u < 0 or u >= self.end - self.start:
            return 0.0
        if u < self.close_s:
            return 0.5 - 0.5 * math.cos(math.pi * u / self.close_s)
        u -= self.close_s
        if u < self.hold_s:
            return 1.0
        u -= self.hold_s
        return 0.5 + 0.5 * math.cos(math.pi * u / self.open_s)


class Blinks:
    """Owned by the pacer thread; `closure` is asked once per tick, in order."""

    def __init__(self, fps: int, per_minute: float, seed: int) -> None:
        self._fps = fps
        self._rate = per_minute
        self._rng = random.Random(seed)
        self._blink: _Blink | None = None
        self._next = self._interval(1.0) if per_minute > 0 else math.inf
        self._last_end = -math.inf
        self.count = 0

    @property
    def blinking(self) -> bool:
        """A blink is under way (as of the last frame asked)."""
        return self._blink is not None

    def _interval(self, factor: float) -> float:
        mean = 60.0 / max(self._rate * factor, 1e-3)
        mu = math.log(max(mean - _SHIFT_S, 0.05)) - _SIGMA**2 / 2
        return _SHIFT_S + self._rng.lognormvariate(mu, _SIGMA)

    def _start(self, t: float) -> None:
        # Shut for one frame's time: exactly one frame falls in it, whatever the rate.
        frame = 1.0 / self._fps
        # Begun half a frame ago: the frame that starts it already shows the lid moving.
        self._blink = _Blink(t - frame / 2, self._rng.uniform(0.075, 0.11),
                             self._rng.uniform(0.16, 0.24), frame)
        self.count += 1

    def closure(self, n: int, rate_factor: float = 1.0, asked: float = 0.0) -> float:
        """How closed the eyes are at frame n (0 open .. 1 shut). `rate_factor` scales the
        rate (fewer while speaking); `asked` (0 .. 1) is how strongly something asks for a
        blink now (a pause in speech, a glance away), taken if the last was a while ago."""
        t = n / self._fps
        b = self._blink
        if b is not None and t >= b.end:
            self._last_end = b.end
            self._blink = b = None
            if self._rng.random() < _DOUBLE:
                self._next = t + self._rng.uniform(0.05, 0.2)
            else:
                self._next = t + self._interval(rate_factor)
        if b is None and self._rate > 0:
            if asked > 0 and t - self._last_end > _MIN_ASKED_GAP_S and \
                    self._rng.random() < asked:
                self._next = t
            if t >= self._next:
                self._start(t)
                b = self._blink
        if b is None:
            return 0.0
        return b.closure(t)
