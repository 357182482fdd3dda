"""The frame clock's arithmetic: frame n at t0 + n/fps, with no drift."""

from __future__ import annotations

import numpy as np
import pytest

from avatarcast.onair.clock import NS_PER_S, FrameClock


@pytest.mark.parametrize("fps", [24, 25, 30, 60])
def test_clock_does_not_drift_over_a_million_ticks(fps: int) -> None:
    clock = FrameClock(fps, now_ns=lambda: 0, t0_ns=123)
    n = 1_000_000
    assert clock.deadline_ns(n) - 123 == n * NS_PER_S // fps
    # The interval between consecutive deadlines never strays from 1/fps by a nanosecond.
    d = np.array([clock.deadline_ns(i) for i in range(n - 1000, n + 1)])
    assert set(np.diff(d)) <= {NS_PER_S // fps, NS_PER_S // fps + 1}
    assert clock.frame_at(clock.deadline_ns(n)) == n
    assert clock.frame_at(clock.deadline_ns(n) - 1) == n - 1
