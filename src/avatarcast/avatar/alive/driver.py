"""The motion track: one Motion per tick of the stream, from the clock, what the face is doing
(idle, thinking, speaking) and what the speech on air asks (its cues).

* The head sways at rest: a sum of sines with periods that are no multiples of each other per
  axis (slow, smooth, never the same twice in a while, and bounded: it cannot drift away
  however long it runs).
* Breathing: one breath after another, each 20 % shorter or longer at random, the inhale
  quicker than the exhale; the head rides on the shoulders.
* Speaking: the sway grows a little, nods and brows follow the speech's cues, fewer blinks,
  and blinks at its pauses.
* Thinking (something is being prepared and nothing airs): after a moment the eyes glance up
  and aside and the head tilts with them; back once the speech starts.

Every change between states goes through a smoother, so nothing jumps at a cut, a skip or an
interrupt. Deterministic for a given seed: the same ticks in the same states give the same
motion.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass

from ...media.cues import QUIET, Cue
from ...settings import AliveSettings
from .blinks import Blinks


class Activity(enum.Enum):
    IDLE = "idle"
    THINKING = "thinking"
    SPEAKING = "speaking"


@dataclass(frozen=True)
class Motion:
    """The face's pose on one frame; lengths are shares of the face's height (brow to chin)."""

    head_x: float = 0.0
    head_y: float = 0.0  # positive: down
    roll: float = 0.0  # degrees, positive: clockwise on screen
    rise: float = 0.0  # the shoulders' and chest's rise
    lids: float = 0.0  # 0 open .. 1 shut
    brows: float = 0.0  # lift
    gaze_x: float = 0.0  # -1 .. 1 of how far the iris can go; positive: to screen right
    gaze_y: float = 0.0  # positive: down


# Sway at rest: (share of the face's height or degrees, period in seconds) per axis.
_SWAY_X = ((0.0060, 7.73), (0.0040, 12.91), (0.0025, 19.37))
_SWAY_Y = ((0.0035, 5.93), (0.0025, 13.71))
_ROLL = ((0.55, 6.53), (0.35, 10.31), (0.25, 15.53))
_RISE = 0.02  # a breath lifts the shoulders by this share of the face's height
_NOD = 0.025  # a full nod dips the head by this share
_BROW = 0.03  # a full lift raises the brows by this share
_CUE_OMEGA = 20.0  # nods and brows follow their cues this briskly (gestures.py leads by 2/it)
_GLANCE_AFTER_S = 0.8  # thinking: the eyes go up and aside after this long
_GLANCE = (0.5, -0.55)  # where they go (x toward the chosen side, y up)


class _Smooth:
    """One-pole smoothing towards a target, with a time constant in seconds."""

    def __init__(self, tau_s: float, fps: int, value: float = 0.0) -> None:
        self._k = 1.0 - math.exp(-1.0 / (max(tau_s, 1e-3) * fps))
        self.value = value

    def step(self, target: float, frames: int = 1) -> float:
        k = 1.0 - (1.0 - self._k) ** max(frames, 1)
        self.value += (target - self.value) * k
        return self.value


class _Spring:
    """A critically damped follower: no jump and no kink when its target jumps (a cut in the
    middle of a nod), a delay of about 2 / omega seconds on a smooth target."""

    def __init__(self, omega: float, fps: int) -> None:
        self._w = omega
        self._dt = 1.0 / fps
        self.value = 0.0
        self._speed = 0.0

    def step(self, target: float, frames: int = 1) -> float:
        # The exact solution over the step, relative to the target.
        w, t = self._w, self._dt * max(frames, 1)
        x, v = self.value - target, self._speed
        decay = math.exp(-w * t)
        self.value = target + (x + (v + w * x) * t) * decay
        self._speed = (v - w * (v + w * x) * t) * decay
        return self.value


class MotionDriver:
    """Owned by the pacer thread: `at` is called once per tick, in order (a tick may skip
    ahead after a stall; the track then continues from the present)."""

    def __init__(self, settings: AliveSettings, fps: int) -> None:
        self._s = settings
        self._fps = fps
        rng = random.Random(settings.seed)
        self._phases = [rng.uniform(0, 2 * math.pi) for _ in range(8)]
        self._rng = rng
        self.blinks = Blinks(fps, settings.blinks_per_minute, rng.randrange(1 << 30))
        self._breath_phase = rng.random()
        self._breath_len = self._breath_period()
        self._last_n: int | None = None
        self._thinking_since: int | None = None
        self._side = 1.0
        self._speaking = _Smooth(0.4, fps)
        self._glance = _Smooth(0.15, fps)
        self._tilt = _Smooth(0.45, fps)
        self._nod = _Spring(_CUE_OMEGA, fps)
        self._brow = _Spring(_CUE_OMEGA, fps)

    def _breath_period(self) -> float:
        rate = self._s.breaths_per_minute
        return math.inf if rate <= 0 else 60.0 / rate * self._rng.uniform(0.8, 1.2)

    def _sway(self, t: float, axis: tuple[tuple[float, float], ...], first: int) -> float:
        return sum(a * math.sin(2 * math.pi * t / p + self._phases[first + i])
                   for i, (a, p) in enumerate(axis))

    def _breath(self, frames: int) -> float:
        """The breath's height now, 0 (out) .. 1 (in)."""
        if math.isinf(self._breath_len):
            return 0.0
        self._breath_phase += frames / (self._fps * self._breath_len)
        while self._breath_phase >= 1.0:
            self._breath_phase -= 1.0
            self._breath_len = self._breath_period()
        p = self._breath_phase
        if p < 0.4:
            return 0.5 - 0.5 * math.cos(math.pi * p / 0.4)
        return 0.5 + 0.5 * math.cos(math.pi * (p - 0.4) / 0.6)

    def at(self, n: int, activity: Activity, cue: Cue | None = None) -> Motion:
        frames = 1 if self._last_n is None else max(1, n - self._last_n)
        self._last_n = n
        cue = cue or QUIET
        t = n / self._fps
        speaking = self._speaking.step(1.0 if activity is Activity.SPEAKING else 0.0, frames)

        glance_to = 0.0
        asked = cue.blink
        if activity is Activity.THINKING:
            if self._thinking_since is None:
                self._thinking_since = n
                self._side = self._rng.choice((-1.0, 1.0))
            if n - self._thinking_since >= _GLANCE_AFTER_S * self._fps:
                glance_to = 1.0
                if n - self._thinking_since < _GLANCE_AFTER_S * self._fps + frames:
                    asked = max(asked, 0.6)  # a glance away brings a blink
        else:
            self._thinking_since = None
        glance = self._glance.step(glance_to, frames)
        tilt = self._tilt.step(glance_to * self._side, frames)

        rate = 1.0 - 0.3 * speaking - 0.3 * glance
        lids = self.blinks.closure(n, rate, asked)
        amp = self._s.motion * (1.0 + 0.3 * speaking)
        nod = self._nod.step(cue.nod, frames)
        brow = self._brow.step(cue.brow, frames)
        breath = self._breath(frames) * self._s.breathing
        return Motion(
            head_x=amp * self._sway(t, _SWAY_X, 0),
            head_y=amp * self._sway(t, _SWAY_Y, 3) + self._s.motion * (
                _NOD * nod - 0.01 * glance),
            roll=amp * self._sway(t, _ROLL, 5) + self._s.motion * 1.2 * tilt,
            rise=_RISE * breath,
            lids=lids,
            brows=_BROW * max(brow, 0.5 * glance),
            gaze_x=_GLANCE[0] * glance * self._side,
            gaze_y=_GLANCE[1] * glance,
        )
