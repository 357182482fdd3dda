"""When the eyes blink: at a natural rate, at irregular intervals, each blink closing fast,
shut for a frame, opening slower; fewer when asked to, one when a pause asks for it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from avatarcast.avatar.alive.blinks import Blinks

FPS = 30


def _run(blinks: Blinks, frames: int, **kw: float) -> npt.NDArray[np.float64]:
    return np.array([blinks.closure(n, **kw) for n in range(frames)])


def _blinks(closure: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """(first, last) frame of each blink."""
    moving = closure > 0
    starts = np.flatnonzero(moving[1:] & ~moving[:-1]) + 1
    ends = np.flatnonzero(moving[:-1] & ~moving[1:])
    if moving[0]:
        starts = np.r_[0, starts]
    return list(zip(starts.tolist(), ends[: len(starts)].tolist(), strict=False))


def test_a_natural_rate_at_irregular_intervals() -> None:
    minutes = 30
    closure = _run(Blinks(FPS, 17.0, seed=3), minutes * 60 * FPS)
    found = _blinks(closure)
    rate = len(found) / minutes
    assert 14 <= rate <= 20, rate
    intervals = np.diff([a for a, _ in found]) / FPS
    # Right-skewed, spread out, not a metronome; a few quick doubles.
    cv = intervals.std() / intervals.mean()
    skew = float(((intervals - intervals.mean()) ** 3).mean() / intervals.std() ** 3)
    assert cv > 0.45 and skew > 1.0, (cv, skew)
    doubles = (intervals < 0.6).mean()
    assert 0.03 < doubles < 0.2, doubles
    assert np.median(intervals) > 1.5


def test_each_blink_closes_fast_stays_shut_a_frame_and_opens_slower() -> None:
    closure = _run(Blinks(FPS, 30.0, seed=5), 5 * 60 * FPS)
    found = _blinks(closure)
    assert len(found) > 100
    for first, last in found:
        c = closure[first:last + 1]
        assert 0.1 <= len(c) / FPS <= 0.4, len(c)
        assert (c == 1.0).sum() >= 1
        peak = int(np.argmax(c))
        closing, opening = peak + 1, len(c) - peak
        assert opening > closing, c.round(2)
        # Monotonic down, then up: no flutter.
        assert np.all(np.diff(c[: peak + 1]) >= 0) and np.all(np.diff(c[peak:]) <= 0)


def test_fewer_blinks_when_the_rate_is_lowered_and_none_at_zero() -> None:
    frames = 20 * 60 * FPS
    rest = len(_blinks(_run(Blinks(FPS, 17.0, seed=9), frames)))
    speaking = len(_blinks(_run(Blinks(FPS, 17.0, seed=9), frames, rate_factor=0.6)))
    assert speaking < 0.8 * rest, (rest, speaking)
    assert not _run(Blinks(FPS, 0.0, seed=9), frames).any()


def test_a_blink_asked_for_comes_at_once_unless_one_just_ended() -> None:
    b = Blinks(FPS, 1.0, seed=2)  # left alone, about one a minute
    c = [b.closure(n) for n in range(60)]
    assert not any(c)  # the first is many seconds away
    assert b.closure(60, asked=1.0) > 0  # asked: it starts now
    after = [b.closure(n) for n in range(61, 75)]
    assert max(after) == 1.0 and after[-1] == 0.0
    # Just after one, a request is not taken (blinks never come in bursts).
    assert all(b.closure(n, asked=1.0) == 0 for n in range(75, 95))
    # A while later it is.
    assert any(b.closure(n, asked=1.0) > 0 for n in range(95, 140))

def test_the_same_seed_gives_the_same_blinks() -> None:
    a = _run(Blinks(FPS, 17.0, seed=4), 3000)
    assert np.array_equal(a, _run(Blinks(FPS, 17.0, seed=4), 3000))
    assert not np.array_equal(a, _run(Blinks(FPS, 17.0, seed=5), 3000))
