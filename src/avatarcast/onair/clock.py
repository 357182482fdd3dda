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
