"""The motion put on air: each tick's frame, idle or talking, moved by the channel's motion
track, on the pacer thread, after the program chose it and before the encoder and the taps
see it. Since the mouth is drawn first and the whole face is moved after, the mouth follows
the head exactly whichever animator drew it; since the track runs on the clock, a cut, a skip
or an interrupt changes the picture under the motion, never the motion."""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from ...infra.scratch import Scratch
from ...media.frames import Frame
from ...onair.state import StreamState
from ...onair.tick import TickOutput
from ...settings import AliveSettings
from .driver import Activity, Motion, MotionDriver
from .lids import move_eye
from .pose import move_body
from .rig import FaceRig

log = logging.getLogger(__name__)


def draw(frame: Frame, rig: FaceRig, index: int, m: Motion,
         scratch: Scratch | None = None, mask: tuple[Frame, Frame] | None = None) -> Frame:
    """`frame` (picture `index` of its avatar's cycle) in pose `m`: a new frame. `scratch`
    keeps the working buffers from one call to the next (one thread's). `mask`: the person's
    mask over the frame (frames.mask_frame) and a buffer to draw it into, moved alike."""
    scratch = scratch or Scratch()
    r = rig.at(index)
    face = r.pose.face
    src = frame
    if m.lids > 0.01 or abs(m.brows) > 1e-4 or m.gaze_x or m.gaze_y:
        src = scratch.get("eyes", frame.shape, np.uint8)
        np.copyto(src, frame)
        for eye in r.eyes:
            move_eye(src, frame, eye, closed=m.lids, brow_px=m.brows * face,
                     gaze=(m.gaze_x, m.gaze_y))
    out = src.copy()
    if mask is not None:
        np.copyto(mask[1], mask[0])  # (what does not move)
    move_body(out, src, r.pose, m.head_x * face, m.head_y * face, m.roll, m.rise * face,
              scratch, mask)
    return out


class Enliven:
    """Owned by the pacer thread (called by it once per tick). `state` tells the stream's
    state (the state machine's, stepped by the same thread)."""

    def __init__(self, settings: AliveSettings, fps: int,
                 state: Callable[[], StreamState]) -> None:
        self.driver = MotionDriver(settings, fps)
        self._state = state
        self.failed: str | None = None  # why the motion stopped (a bug), if it did
        self._spent: deque[float] = deque(maxlen=300)  # seconds drawing, the last ticks
        self._scratch = Scratch()

    @property
    def ms_per_frame(self) -> float | None:
        """The median time drawing the motion took on the last 300 ticks (ms), or None."""
        return round(statistics.median(self._spent) * 1000, 2) if self._spent else None

    def __call__(self, n: int, out: TickOutput) -> None:
        if out.segment is not None and not out.thinking:
            activity = Activity.SPEAKING
        elif out.thinking or self._state() is StreamState.PROCESSING:
            activity = Activity.THINKING
        else:
            activity = Activity.IDLE
        motion = self.driver.at(n, activity, out.cue)
        idle = out.shown
        rig = idle.rig if idle is not None else None
        if not isinstance(rig, FaceRig) or self.failed is not None:
            return
        t = time.perf_counter()
        try:
            index = out.cycle_index(n)
            behind = idle.behind if idle is not None else None
            mask = None
            if behind is not None:  # moved as the frame is (the scene reads it this tick)
                given = behind.masks[index]
                mask = given, self._scratch.get("moved mask", given.shape, np.uint8)
            out.frame = draw(out.frame, rig, index, motion, self._scratch, mask)
            if mask is not None:
                out.mask = mask[1]
            out.owned = True
            self._spent.append(time.perf_counter() - t)
        except Exception as exc:  # a bug here must not take the stream off air
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("the avatar's motion failed; the picture airs without it")

