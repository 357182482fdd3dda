"""The pacer: one thread that emits frame n at t0 + n/fps, never faster, never waiting on a
producer. Each tick takes one frame and one frame's worth of audio from the program."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from ..infra.threads import start_thread
from ..media.audio import Pcm
from ..media.frames import Frame
from .clock import FrameClock, StreamPosition
from .program import Program
from .segment import Segment
from .tick import Receipt, TickOutput

log = logging.getLogger(__name__)

# Never more than this many frames ahead of the clock (a cut's tick early, then a burst).
MAX_AHEAD = 3


class FrameSink(Protocol):
    generation: int

    def submit(self, frame: Frame, audio: Pcm, receipt: Receipt | None = None,
               quiet_after: int = 0) -> bool: ...


class Pacer:
    """Owns the pacer thread; `start` and `stop` are called from the event loop.

    `wake` is set by the program when a cut is commanded (skip, interrupt, clear): the next
    frame goes out at once, up to one tick early, so that the cut leaves without waiting for
    the tick (frames and samples are timed by their count, not by when they are sent). The
    frames a tick says to rush (TickOutput.rush) follow it at once. `fence` (a fleet
    worker's): is this worker still the channel's owner? Checked before every frame; once it
    says no, the pacer stops (nothing more is published on the stream). `on_first_frame` is
    called on this thread when a segment's first frame went to the encoder (with the encoder
    run and its frame number): keep it short, hand work to another thread. `taps` see every
    tick sent, on this thread: (frame number, frame, its audio); the console's preview and the
    WebRTC view keep what they need, while unwatched a comparison. `stage` may change each
    tick's frame before anyone sees it (the avatar's motion, avatar/alive/stage.py)."""

    def __init__(
        self,
        clock: FrameClock,
        program: Program,
        sink: FrameSink,
        *,
        position: StreamPosition | None = None,
        wake: threading.Event | None = None,
        fence: Callable[[], bool] | None = None,
        on_first_frame: Callable[[Segment, int, int], None] | None = None,
        taps: Sequence[Callable[[int, Frame, Pcm], None]] = (),
        stage: Callable[[int, TickOutput], None] | None = None,
    ) -> None:
        self.clock = clock
        self.program = program
        self.sink = sink
        # More than this far behind (the process was stopped, the machine stalled), the ticks
        # in between are dropped: the stream resumes at the present instead of bursting.
        self.max_behind = max(2, clock.fps // 2)
        self.frames_sent = 0
        self.frames_dropped = 0
        self.ticks_late = 0
        self._stop = threading.Event()
        self._wake = wake if wake is not None else threading.Event()
        self._rush_to = -1  # the last frame of a burst
        self.frames_early = 0
        self._thread: threading.Thread | None = None
        self._fence = fence
        self.position = position if position is not None else StreamPosition()
        self.error: BaseException | None = None
        self._on_first_frame = on_first_frame
        self._taps = tuple(taps)
        self._stage = stage

    def start(self) -> None:
        self._thread = start_thread(self._loop, name="pacer", daemon=True)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Sending frames: started, and neither stopped nor asked to stop (a stop asked of it
        from the event loop takes effect at its next frame)."""
        return (self._thread is not None and self._thread.is_alive()
                and not self._stop.is_set())

    def _loop(self) -> None:
        n = 0
        try:
            while self._due(n):
                behind = self.clock.frame_at(self.clock.now_ns()) - n
                if behind > self.max_behind:
                    log.warning("pacer %d frames behind; dropping them", behind)
                    self.frames_dropped += behind
                    n += behind
                elif behind >= 1:
                    self.ticks_late += 1
                if self._fence is not None and not self._fence():
                    self.error = RuntimeError("the channel's lease was not confirmed in time")
                    log.error("off air: %s", self.error)
                    return
                self._emit(n)
                n += 1
        except BaseException as exc:  # the stream is dead without this thread: say why
            self.error = exc
            log.exception("pacer crashed")
            raise

    def _due(self, n: int) -> bool:
        """Wait until frame n is due, or until a cut is commanded while it is less than a tick
        away, or while it is in a burst (then it goes now: never more than MAX_AHEAD frames
        ahead of the clock). False once stopped."""
        tick_ns = 1_000_000_000 // self.clock.fps
        while not self._stop.is_set():
            delay_ns = self.clock.deadline_ns(n) - self.clock.now_ns()
            if delay_ns <= 0:
                return True
            if n <= self._rush_to and delay_ns <= MAX_AHEAD * tick_ns:
                self.frames_early += 1
                return True
            if self._wake.wait(delay_ns / 1e9):
                self._wake.clear()
                if self._stop.is_set():
                    return False
                if self.clock.deadline_ns(n) - self.clock.now_ns() <= tick_ns:
                    self.frames_early += 1
                    return True
        return False

    def _emit(self, n: int) -> None:
        out = self.program.tick(n)
        if self._stage is not None:
            self._stage(n, out)
        if out.rush:
            self._rush_to = max(self._rush_to, n + out.rush)
        run = self.sink.generation
        frame = self.position.advance(run)
        if self.sink.submit(out.frame, out.audio, out.receipt, out.quiet_after * len(out.audio)):
            self.frames_sent += 1
            for tap in self._taps:
                tap(n, out.frame, out.audio)
            seg = out.segment
            if (seg is not None and seg.placed(run, frame)
                    and self._on_first_frame is not None):
                self._on_first_frame(seg, run, frame)
            self.position.sent(run, frame)
            return
        self.frames_dropped += 1
        if out.receipt is not None:
            out.receipt.dropped()
        elif out.segment is not None:
            self.program.retry(out.segment)
