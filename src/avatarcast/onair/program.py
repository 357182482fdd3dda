"""What is on air, frame by frame: idle, a speech segment, or a crossfade between them.

Only the pacer thread calls `tick`; every other thread talks to the program through commands
that are applied at the start of the next tick, so controls act within one frame. What became
of a segment (its Outcome) goes out to the program's subscribers, from the pacer thread or
from an encoder writer thread (a receipt): they hand it over to their own thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from ..media.audio import silence
from ..media.frames import blend
from ..media.idle import IdleCycle
from .fade import Crossfade, CutFade
from .segment import Outcome, Segment
from .state import Seen, StateMachine
from .tick import CUT_BURST, START_BURST, Receipt, TickOutput

log = logging.getLogger(__name__)

OutcomeListener = Callable[[Segment], None]
# An interrupt's own speech is synthesized once its cut has gone to the encoder: this many
# ticks after the cut's, the first tick after its burst, which comes at its own time when
# FFmpeg has had time to encode the burst. Synthesis takes both cores of a small machine for
# ~0.1 s; started with the cut, it delayed FFmpeg's encoding of the cut and the old speech was
# heard for longer.
CUT_CLEAR_TICKS = CUT_BURST


class Program:
    def __init__(
        self,
        idle: IdleCycle,
        *,
        fps: int,
        spf: int,
        crossfade_frames: int,
        gap_frames: int,
        lead_frames: int,
        machine: StateMachine,
        on_cut: Callable[[], None] | None = None,
    ) -> None:
        self.idle = idle  # the stream's default avatar, between segments
        # What is on screen between segments: the default, or the avatar of the segment that
        # just aired until the queue empties (two messages of one guest stay with the guest).
        self._shown = idle
        self.fps = fps
        self.spf = spf
        self.xfade = crossfade_frames
        # One shared, read-only slice of silence: idle ticks allocate nothing.
        self._silence = silence(spf)
        self._silence.flags.writeable = False
        # Speech cut off mid-word fades out over this many samples (5 ms), then silence.
        self._cut_fade = max(1, spf * fps // 200)
        self.gap = gap_frames
        self.lead = lead_frames
        self.machine = machine
        self._listeners: list[OutcomeListener] = []
        self._lock = threading.Lock()
        self._commands: deque[Callable[[int], None]] = deque()
        self._no_pacer = False  # set by carry_out: commands are carried out when given
        self._pending: deque[Segment] = deque()
        self._current: Segment | None = None
        self._pos = 0
        self._xf = Crossfade(crossfade_frames)
        self._fade: CutFade | None = None
        self._free_at = 0  # first tick a new segment may start (gap after the last one)
        self._paused = False
        # Interrupting messages that arrived and are not queued yet: nothing else starts.
        self._holds = 0
        self._replan = False
        self._preparing = 0  # utterances being synthesized (preparing / prepared commands)
        self.tick_no = 0
        self.frames_late = 0
        # Called (from any thread) when a cut is commanded; the pacer then ticks at once.
        self._on_cut = on_cut
        # (tick, callback): told that a cut has gone to the encoder, from that tick on.
        self._after_cut: deque[tuple[int, Callable[[], None]]] = deque()

    def subscribe(self, listener: OutcomeListener) -> None:
        """Tell `listener` each segment's outcome once it is set (on the pacer thread or an
        encoder writer thread: it must hand the news over to its own thread)."""
        self._listeners.append(listener)

    # -- commands, from any thread -------------------------------------------------------

    def _command(self, fn: Callable[[int], None], cut: bool = False) -> None:
        self._commands.append(fn)
        if self._no_pacer:
            self.carry_out()
            return
        if cut and self._on_cut is not None and self._current is not None:
            self._on_cut()

    def preparing(self) -> None:
        """An utterance is being synthesized: the stream is PROCESSING, and another avatar's
        idle stays on screen until it airs."""

        def run(n: int) -> None:
            self._preparing += 1

        self._command(run)

    def prepared(self) -> None:
        """Its synthesis ended (aired or not)."""

        def run(n: int) -> None:
            self._preparing -= 1

        self._command(run)

    def submit(self, seg: Segment, front: bool = False, release_hold: bool = False) -> None:
        """Queue a segment (`front`: ahead of the others). `release_hold` lets go of the hold
        its interrupting message put on the program when it arrived."""

        def run(n: int) -> None:
            if release_hold:
                self._release_hold()
            if seg.done:
                return
            if front:
                self._pending.appendleft(seg)
            else:
                self._pending.append(seg)

        self._command(run)

    def skip(self) -> None:
        def run(n: int) -> None:
            self._cut(n, Outcome.SKIPPED)

        self._command(run, cut=True)

    def interrupt(
        self, take_back: Segment | None = None, reply: Callable[[bool], None] | None = None,
        cleared: Callable[[], None] | None = None,
    ) -> None:
        """An interrupting message arrived: cut what is on air now, and hold anything but an
        urgent segment back until `release_hold` (its own segment is not rendered yet).

        `take_back` is a segment whose rendering was stopped for it: still waiting, it leaves
        the queue unfinished and `reply(True)` says so; if it was on air it is cut with the
        rest and `reply(False)`. `cleared` is called once the cut has gone to the encoder
        (CUT_CLEAR_TICKS after the cut's tick, on the pacer thread), or at once when nothing
        is on air (read without the lock: a segment starting in the tick under way is cut
        all the same, only without the wait)."""
        if cleared is not None and self._current is None:
            cleared()
            cleared = None

        def run(n: int) -> None:
            if self._cut(n, Outcome.INTERRUPTED) and cleared is not None:
                self._after_cut.append((n + CUT_CLEAR_TICKS, cleared))
            elif cleared is not None:
                cleared()
            self._holds += 1
            taken = False
            if take_back is not None and take_back in self._pending:
                self._pending.remove(take_back)
                self._replan = True
                taken = True
            if reply is not None:
                reply(taken)

        self._command(run, cut=True)

    def hold(self) -> None:
        """An interrupting message is waiting again (its rendering was stopped and requeued)."""

        def run(n: int) -> None:
            self._holds += 1

        self._command(run)

    def release_hold(self) -> None:
        self._command(lambda n: self._release_hold())

    def _release_hold(self) -> None:
        self._holds = max(0, self._holds - 1)

    def clear(self) -> None:
        def run(n: int) -> None:
            self._cut(n, Outcome.CLEARED)
            while self._pending:
                self._finish(self._pending.popleft(), Outcome.CLEARED, n)

        self._command(run, cut=True)

    def set_default(self, idle: IdleCycle) -> None:
        """A new default avatar: it replaces the old one between segments, on a frame
        boundary (at once when nothing is on air or queued)."""

        def run(n: int) -> None:
            self.idle = idle

        self._command(run)

    def pause(self, paused: bool) -> None:
        def run(n: int) -> None:
            self._paused = paused

        self._command(run)

    def withdraw(self, seg: Segment, outcome: Outcome) -> None:
        """Take a segment off air or out of the queue, wherever it is."""

        def run(n: int) -> None:
            if self._current is seg:
                self._cut(n, outcome)
            elif seg in self._pending:
                self._replan = True
                self._pending.remove(seg)
                self._finish(seg, outcome, n)
            elif seg.started_at is None:
                self._finish(seg, outcome, n)
            # else its last frame is on its way to the encoder: the receipt settles it

        self._command(run)

    def retry(self, seg: Segment) -> None:
        """Some of its frames never reached the encoder. What aired of it is no longer held
        (frames are dropped once sent), so its owner renders it again and it airs anew."""

        def run(n: int) -> None:
            if seg.done:
                return
            if self._current is seg:
                self._current = None
                self._fade = None
            elif seg in self._pending:
                self._pending.remove(seg)
            self._replan = True
            log.warning("segment %s did not fully reach the encoder; it will air again", seg.id,
                        extra={"msg_id": seg.id})
            self._finish(seg, Outcome.RETRY, n)

        self._command(run)

    def encoder_up(self, up: bool) -> None:
        def run(n: int) -> None:
            self.machine.encoder(up)
            if not up and self._current is not None:
                # Talking into an outage would lose the rest: cut now, air it again later.
                log.warning("segment %s cut by the encoder outage; it will air again",
                            self._current.id, extra={"msg_id": self._current.id})
                self._cut(n, Outcome.RETRY)

        self._command(run)

    def notify_done(self, seg: Segment) -> None:
        for listener in self._listeners:
            listener(seg)

    def plan_start(self) -> int:
        """The tick a segment submitted now would start at if all goes to plan."""
        with self._lock:
            at = max(self._free_at, self.tick_no + self.lead)
            cur = self._current
            if cur is not None and cur.started_at is not None:
                at = max(at, cur.started_at + len(cur.audio) + self.gap)
            for seg in self._pending:
                at = max(at, seg.planned_start) + len(seg.audio) + self.gap
            return at

    @property
    def pending_count(self) -> int:
        return len(self._pending) + (self._current is not None)

    @property
    def on_air(self) -> Segment | None:
        return self._current

    def carry_out(self) -> None:
        """The pacer has stopped for good (the channel went off air; its thread has ended):
        carry out now what was commanded since its last tick, as its next tick would have, and
        from now on each command when it is given (a receipt's retry from an encoder's thread,
        a withdrawal from the loop), so that a segment withdrawn from the air or the queue is
        settled at once instead of never."""
        with self._lock:
            self._no_pacer = True
            n = self.tick_no + 1
            while self._commands:
                self._commands.popleft()(n)

    # -- the pacer's side ----------------------------------------------------------------

    def tick(self, n: int) -> TickOutput:
        with self._lock:
            self.tick_no = n
            while self._commands:
                self._commands.popleft()(n)
            while self._after_cut and self._after_cut[0][0] <= n:
                self._after_cut.popleft()[1]()
            if self._current is None and self._fade is None:
                self._maybe_start(n)
                if self._current is None:
                    self._back_to_default(n)
            if self._current is not None:
                out = self._talk(n)
            elif self._fade is not None:
                out = self._fade_out(n)
            else:
                out = TickOutput(self._shown.frame(n), self._silence)
            if self._current is None:
                # Nothing may start before _free_at (see _maybe_start): silence until then.
                out.quiet_after = max(0, self._free_at - n - 1)
            out.shown = self._shown
            self._update_state(out)
            return out

    def _maybe_start(self, n: int) -> None:
        if self._paused or not self.machine.may_start():
            return
        if not self._pending or n < self._free_at:
            return
        seg = self._pending[0]
        if self._holds and not seg.urgent:
            return
        # On plan, the talking frames continue the idle cycle; once plans are broken (a cut,
        # a withdrawal, a retry), air as soon as possible and crossfade instead.
        if n < seg.planned_start and not self._replan:
            return
        render_fps = seg.render_fps() if seg.render_fps is not None else float("inf")
        if not seg.ready(render_fps, self.fps):
            return
        self._replan = False
        self._pending.popleft()
        self._current = seg
        self._pos = 0
        seg.begin(n)
        idle = seg.idle or self.idle
        # Another avatar than the one on screen: a cut on the frame, never a blend of two faces.
        xf = self._xf = Crossfade(self.xfade, hard_in=idle is not self._shown,
                                  continuous=(seg.planned_start - n) % idle.period == 0)
        self._shown = idle
        how = ("cut to another avatar" if xf.hard_in else
               "continues the idle cycle" if xf.continuous else "crossfade")
        log.info("on air: %s at frame %d (%s)", seg.id, n, how, extra={"msg_id": seg.id})

    def _back_to_default(self, n: int) -> None:
        """Between segments, another avatar's idle gives way to the default's once nothing is
        queued or being prepared and the gap after the last segment is over."""
        if self._shown is self.idle or n < self._free_at:
            return
        if self._pending or self._preparing > 0 or self._holds:
            return
        self._shown = self.idle

    def _talk(self, n: int) -> TickOutput:
        seg = self._current
        assert seg is not None
        k = self._pos
        if k >= seg.available:
            # Underrun: the renderer fell behind (or the answer's model is thinking, which is
            # not late); hold the picture, keep the clock.
            if not seg.waiting_for_text:
                self.frames_late += 1
            held = seg.frames[k - 1] if 0 < k <= len(seg.frames) else self._shown.frame(n)
            return TickOutput(held, self._silence, seg, index=k - 1 if k > 0 else None,
                              thinking=seg.waiting_for_text)
        frame = seg.frames[k]
        cue = seg.cues[k] if k < len(seg.cues) else None
        out = TickOutput(frame, seg.audio[k], seg, index=k, cue=cue)
        if k == 0:
            out.rush = max(0, min(START_BURST, seg.available) - 1)
        self._pos = k + 1
        # Sent once, never again (a cut shows the last frame; an outage renders anew).
        seg.frames.drop_before(k)
        seg.audio.drop_before(k + 1)
        seg.cues.drop_before(k + 1)
        total = seg.total
        weight = self._xf.weight(k, total)
        if weight is not None:
            out.frame = blend(self._shown.frame(n), frame, weight)
        if total is not None and self._pos >= total:
            out.receipt = Receipt(self, seg, n)
            self._current = None
            self._free_at = n + 1 + self.gap
        return out

    def _cut(self, n: int, outcome: Outcome) -> bool:
        """Cut what is on air (False: nothing was)."""
        seg = self._current
        if seg is None:
            return False
        k = self._pos
        shown = seg.frames[k - 1] if 0 < k <= len(seg.frames) else self._shown.frame(n)
        tail = seg.audio[k] if k < len(seg.audio) else None
        self._current = None
        self._replan = True
        self._fade = CutFade(shown, tail, max(1, self.xfade))
        self._free_at = n + self._fade.length
        self._finish(seg, outcome, n)
        return True

    def _fade_out(self, n: int) -> TickOutput:
        f = self._fade
        assert f is not None
        out = f.tick(self._shown.frame(n), self._silence, self._cut_fade)
        if f.over:
            self._fade = None
        return out

    def _finish(self, seg: Segment, outcome: Outcome, n: int) -> None:
        if seg.finish(outcome, n):
            log.info("segment %s %s at frame %d", seg.id, outcome.value, n,
                     extra={"msg_id": seg.id})
            self.notify_done(seg)

    def _update_state(self, out: TickOutput) -> None:
        """What this tick showed, for the state machine to judge."""
        seg = out.segment
        fading = self._fade is not None or (
            seg is not None and self._xf.weight(self._pos - 1, seg.total) is not None)
        self.machine.step(Seen(
            talking=seg is not None, fading=fading,
            waiting=bool(self._pending or self._preparing > 0 or self._holds)))
