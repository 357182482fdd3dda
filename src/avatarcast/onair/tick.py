"""What one tick hands the encoder, and which ticks go to it at once, ahead of the clock.

Made by the program on the pacer thread; a Receipt is settled by the encoder's writer threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..media.audio import Pcm
from ..media.cues import Cue
from ..media.frames import Frame
from ..media.idle import IdleCycle
from .segment import Outcome, Segment

# Ticks sent to the encoder at once, ahead of the clock: at a cut (its tick and the next) and
# at a speech's start (its first three). FFmpeg's AAC encoder lets a packet out once 4096
# samples from its start have come in, and FFmpeg reads no audio past the newest video frame
# nor muxes a packet timed after it: sent one per tick, the end of a cut sound waited up to
# two more ticks in the encoder (heard 10 or 50-70 ms after its tick, by the AAC frame's
# phase), and the start of a speech two or three.
CUT_BURST = 2
START_BURST = 3


class SegmentOwner(Protocol):
    """What a receipt tells: the program (no import of it here, it imports this)."""

    def notify_done(self, seg: Segment) -> None: ...
    def retry(self, seg: Segment) -> None: ...


@dataclass
class Receipt:
    """Travels with a segment's last frame; the encoder reports what became of it."""

    program: SegmentOwner
    segment: Segment
    tick: int

    def written(self) -> None:
        if self.segment.finish(Outcome.AIRED, self.tick):
            self.program.notify_done(self.segment)

    def dropped(self) -> None:
        self.program.retry(self.segment)


@dataclass
class TickOutput:
    frame: Frame
    audio: Pcm
    segment: Segment | None = None
    index: int | None = None  # the frame of `segment` shown (held: the last one shown)
    receipt: Receipt | None = None
    # Ticks after this one that are certain to be silent (the fade after a cut, the gap after
    # a segment): the encoder may send their silence early (see Encoder.submit).
    quiet_after: int = 0
    # Ticks after this one that go to the encoder at once, without waiting for their time
    # (CUT_BURST, START_BURST).
    rush: int = 0
    # The avatar whose face is in the frame, and what the speech asks of it besides its
    # mouth on this frame: the motion on air (avatar/alive) moves the face by them.
    shown: IdleCycle | None = None
    cue: Cue | None = None
    # The segment on air waits for more to say (an answer's model thinking between
    # sentences): the picture is held, and the face thinks rather than speaks.
    thinking: bool = False
    # The frame was made for this tick alone (the motion drew it): nobody else holds it, so a
    # later stage may draw on it in place instead of copying it first.
    owned: bool = False
    # The person's mask over `frame` as the motion moved it (a moving background goes
    # behind it, media/idle.py Behind); None: the cycle's own mask for this tick, unmoved.
    mask: Frame | None = None

    def cycle_index(self, n: int) -> int:
        """The frame of the avatar's cycle (`shown`) this tick's picture was made from, on
        tick `n`: a talking frame's own (it was rendered for one), else the idle cycle's."""
        if self.shown is None:
            return 0
        if self.segment is not None and self.index is not None:
            return self.shown.index(self.segment.planned_start + self.index)
        return self.shown.index(n)
