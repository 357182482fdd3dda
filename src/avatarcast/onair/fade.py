"""The program's fades, on the pacer thread: a talking segment crossfaded in and out of the
idle picture when its frames do not continue the idle cycle, and the fade after a cut (the last
frame shown into the idle picture; the speech cut off mid-word faded out over a few ms instead
of clicking)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..media.audio import Pcm, fade
from ..media.frames import Frame, blend
from .tick import CUT_BURST, TickOutput


@dataclass(frozen=True)
class Crossfade:
    """How the segment on air meets the idle picture."""

    frames: int  # crossfade length (playout.crossfade_frames)
    continuous: bool = True  # its frames continue the idle cycle: no crossfade
    hard_in: bool = False  # another avatar's: a cut on the frame in, a crossfade out

    def weight(self, k: int, total: int | None) -> float | None:
        """Weight of talking frame k against idle while crossfading in or out; None if not."""
        if self.continuous or not self.frames:
            return None
        if k < self.frames and not self.hard_in:
            return (k + 1) / (self.frames + 1)
        if total is not None and k >= total - self.frames:
            return (total - k) / (self.frames + 1)
        return None


@dataclass
class CutFade:
    """After a cut: `frozen` (the last frame shown) into the idle picture over `length` ticks;
    `tail` is the speech that would have come next."""

    frozen: Frame
    tail: Pcm | None
    length: int
    step: int = 0

    def tick(self, idle: Frame, silence: Pcm, fade_samples: int) -> TickOutput:
        self.step += 1
        frame = blend(self.frozen, idle, self.step / self.length)
        audio = silence
        if self.step == 1 and self.tail is not None:
            audio = np.zeros_like(self.tail)
            k = min(fade_samples, self.tail.size)
            audio[:k] = fade(self.tail[:k], 1.0, 0.0)
        return TickOutput(frame, audio, rush=CUT_BURST - 1 if self.step == 1 else 0)

    @property
    def over(self) -> bool:
        return self.step >= self.length
