"""The motion track: a sway that stays put over hours, breathing at its rate, a glance while
thinking, nods and brows from the speech's cues, and no jump when the state changes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from avatarcast.avatar.alive.driver import Activity, Motion, MotionDriver
from avatarcast.media.cues import Cue
from avatarcast.settings import AliveSettings

FPS = 30
FIELDS = ("head_x", "head_y", "roll", "rise", "brows", "gaze_x", "gaze_y")


def _track(motions: list[Motion]) -> dict[str, npt.NDArray[np.float64]]:
    return {f: np.array([getattr(m, f) for m in motions]) for f in (*FIELDS, "lids")}


def test_an_hour_of_idle_sways_gently_and_never_drifts() -> None:
    d = MotionDriver(AliveSettings(), FPS)
    t = _track([d.at(n, Activity.IDLE) for n in range(3600 * FPS)])
    x, y, roll = t["head_x"], t["head_y"], t["roll"]
    # A few pixels and a degree or two: at a face of 240 px, 0.01 is 2.4 px.
    assert 0.003 < x.std() < 0.01 and np.ptp(x) < 0.03
    assert 0.2 < roll.std() < 1.0 and np.ptp(roll) < 3.0
    # Smooth: the largest step from one frame to the next is a small part of a pixel.
    assert np.abs(np.diff(x)).max() < 0.0005 and np.abs(np.diff(roll)).max() < 0.05
    # No drift: each ten minutes averages out where the first did.
    tens = x.reshape(6, -1).mean(axis=1)
    assert np.ptp(tens) < 0.1 * np.ptp(x), tens
    rolls = roll.reshape(6, -1).mean(axis=1)
    assert np.ptp(rolls) < 0.1 * np.ptp(roll), rolls
    ys = y.reshape(6, -1).mean(axis=1)
    assert np.ptp(ys) < 0.1 * np.ptp(y), ys


def test_breathing_at_its_rate_with_some_irregularity() -> None:
    d = MotionDriver(AliveSettings(breaths_per_minute=15), FPS)
    rise = _track([d.at(n, Activity.IDLE) for n in range(10 * 60 * FPS)])["rise"]
    inhale = np.flatnonzero((rise[1:] > 0.01) & (rise[:-1] <= 0.01))
    per_minute = len(inhale) / 10
    assert 13 <= per_minute <= 17, per_minute
    periods = np.diff(inhale) / FPS
    assert periods.std() > 0.05 * periods.mean()  # not a metronome
    assert 0.015 < rise.max() <= 0.02 + 1e-9
    off = MotionDriver(AliveSettings(breaths_per_minute=0), FPS)
    assert not any(off.at(n, Activity.IDLE).rise for n in range(600))


def test_thinking_glances_up_and_aside_then_back_when_speaking() -> None:
    d = MotionDriver(AliveSettings(), FPS)
    states = [Activity.IDLE] * 30 + [Activity.THINKING] * 90 + [Activity.SPEAKING] * 60
    t = _track([d.at(n, s) for n, s in enumerate(states)])
    gx, gy = t["gaze_x"], t["gaze_y"]
    assert not gx[:30].any()
    assert not gx[30:50].any()  # not at once: after a moment
    assert abs(gx[115]) > 0.4 and gy[115] < -0.4  # up and aside
    assert abs(gx[-1]) < 0.05 and abs(gy[-1]) < 0.05  # back once it speaks
    for f in FIELDS:
        steps = np.abs(np.diff(t[f]))
        limit = {"gaze_x": 0.12, "gaze_y": 0.12, "roll": 0.15}.get(f, 0.004)
        assert steps.max() < limit, (f, steps.max())


def test_speech_cues_nod_and_lift_and_a_cut_does_not_jump() -> None:
    d = MotionDriver(AliveSettings(), FPS)
    nod = np.r_[np.zeros(10), np.sin(np.linspace(0, np.pi, 12)), np.zeros(10)]
    cues = [Cue(nod=float(v), brow=float(v)) for v in nod]
    speaking = [d.at(n, Activity.SPEAKING, c) for n, c in enumerate(cues)]
    # A cut in the middle of a nod: the next frames are idle, without cues.
    cut = [d.at(n, Activity.SPEAKING, Cue(nod=1.0, brow=1.0)) for n in range(32, 40)]
    after = [d.at(n, Activity.IDLE) for n in range(40, 70)]
    t = _track(speaking + cut + after)
    quiet = MotionDriver(AliveSettings(), FPS)
    base = _track([quiet.at(n, Activity.SPEAKING) for n in range(32)])
    dip = t["head_y"][:32] - base["head_y"]
    assert dip.max() > 0.015  # the head dips with the nod
    assert int(np.argmax(dip)) in range(15, 26)
    assert t["brows"].max() > 0.02
    # Cut in the middle of a nod, or a nod's cue that jumps: at most 0.7 % of the face's
    # height (under 2 px at 240) from one frame to the next.
    assert np.abs(np.diff(t["head_y"])).max() < 0.007
    assert np.abs(np.diff(t["brows"])).max() < 0.008
    assert t["brows"][-1] < 0.002


def test_the_same_seed_gives_the_same_motion() -> None:
    def run(seed: int) -> list[Motion]:
        d = MotionDriver(AliveSettings(seed=seed), FPS)
        return [d.at(n, Activity.IDLE) for n in range(900)]

    assert run(7) == run(7)
    assert run(7) != run(8)
