"""The clock that owns time: frame n is due at t0 + n / fps on the monotonic clock.

Deadlines are computed from n in integer nanoseconds, never accumulated, so they do not drift
however long the stream runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

NS_PER_S = 1_000_000_000


class FrameClock:
    def __init__(
        self, fps: int, now_ns: Callable[[], int] = time.monotonic_ns, t0_ns: int | None = None
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = fps
        self._now_ns = now_ns
        self.t0_ns = now_ns() if t0_ns is None else t0_ns

    def deadline_ns(self, n: int) -> int:
        return self.t0_ns + n * NS_PER_S // self.fps

    def frame_at(self, t_ns: int) -> int:
        """The last frame whose deadline is at or before t_ns."""
        # Largest n with floor(n * 1e9 / fps) <= d, i.e. n < (d + 1) * fps / 1e9.
        d = t_ns - self.t0_ns
        return -((-(d + 1) * self.fps) // NS_PER_S) - 1

    def now_ns(self) -> int:
        return self._now_ns()


class StreamPosition:
    """Where the stream is: the encoder run and how many frames that run has taken. Written
    by the pacer thread after each frame it sends, read from any thread (a lifecycle event's
    place on the stream's clock); a read may see a tick under way."""

    def __init__(self) -> None:
        self._now = (-1, 0)

    def now(self) -> tuple[int, int]:
        return self._now

    def advance(self, run: int) -> int:
        """The frame that a run's next frame will be (a new run starts at 0)."""
        last, frame = self._now
        if run != last:
            self._now = (run, 0)
            return 0
        return frame

    def sent(self, run: int, frame: int) -> None:
        self._now = (run, frame + 1)
