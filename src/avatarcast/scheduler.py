"""From delivered messages to segments on air and back to acks.

Speak messages wait in an ordered backlog; one worker synthesizes and renders them one at a
time, at most `render_ahead` beyond the one on air. An `interrupt` cuts what is on air the
moment it arrives, jumps the backlog and preempts the worker: a message whose rendering it
stops goes back to the backlog unless it was already on air. When the program reports a
segment's outcome, its message is acked, dead-lettered or requeued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .broker.attempts import Attempts
from .broker.consumer import Delivery
from .broker.dedupe import HandledIds
from .broker.messages import ControlMessage
from .face.base import ANIMATOR_RATE
from .face.service import FaceService
from .onair.audio import FrameSlicer, Pcm, resample
from .onair.program import Program
from .onair.segment import Outcome, Segment
from .settings import PlayoutSettings
from .speech.base import SpeechError
from .speech.chain import Speech

log = logging.getLogger(__name__)


class Broker(Protocol):
    """What the scheduler needs of RabbitMQ (the Consumer): settling deliveries."""

    async def ack(self, raw: Any) -> None: ...
    async def requeue(self, raw: Any) -> None: ...
    async def dead_letter(self, raw: Any, reason: str) -> bool: ...
    async def purge_speak(self) -> int: ...


@dataclass(eq=False)
class Utterance:
    delivery: Delivery
    received: float = field(default_factory=time.time)
    segment: Segment | None = None
    cancelled: Outcome | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Wall-clock marks (time.time()) on the way to air, for the time-to-air split.
    marks: dict[str, float] = field(default_factory=dict)
    holding: bool = False  # an interrupt holding the program until its segment is queued

    @property
    def urgent(self) -> bool:
        return self.delivery.message.interrupt

    @property
    def id(self) -> str:
        return self.delivery.message.id


class Scheduler:
    def __init__(
        self,
        *,
        program: Program,
        speech: Speech,
        face: FaceService,
        consumer_ref: Callable[[], Broker],
        handled: HandledIds,
        attempts: Attempts,
        crash_limit: int,
        playout: PlayoutSettings,
        buffer_frames: int,
        sample_rate: int,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._program = program
        self._speech = speech
        self._face = face
        self._consumer = consumer_ref
        self._handled = handled
        self._attempts = attempts
        self._crash_limit = crash_limit
        self._playout = playout
        self._rate = sample_rate
        self._spf = program.spf
        self._min_unsealed = playout.min_buffer_ms * program.fps // 1000
        self._buffer_frames = buffer_frames
        self._spawn = spawn
        self._backlog: deque[Utterance] = deque()
        self._inflight: dict[str, Utterance] = {}
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self.speech_ready = asyncio.Event()
        self.paused = False
        self.history: deque[dict[str, Any]] = deque(maxlen=50)
        self.rendering: Utterance | None = None
        self._task: asyncio.Task[None] | None = None

    # -- arrivals ------------------------------------------------------------------------

    async def on_speak(self, d: Delivery) -> None:
        msg = d.message
        consumer = self._consumer()
        if msg.id in self._handled:
            log.info("duplicate delivery of %s (already handled): acked, not aired", msg.id)
            await consumer.ack(d.raw)
            return
        if (same := self._inflight.get(msg.id)) is not None:
            if same.delivery.replaced_by(d):
                # Redelivered after a reconnect: the work in hand carries on and is settled
                # on the channel that can still ack it.
                log.info("%s redelivered on a new channel; it settles there", msg.id)
                same.delivery = d
            else:
                log.info("duplicate delivery of %s (in flight): acked, not aired", msg.id)
                await consumer.ack(d.raw)
            return
        if (deaths := self._attempts.deaths(msg.id)) >= self._crash_limit:
            reason = (f"the daemon died {deaths} times while handling this message "
                      f"(broker.crash_limit={self._crash_limit}); not retried")
            if await consumer.dead_letter(d.raw, reason):
                self._attempts.end(msg.id)
            return
        utt = Utterance(d)
        self._inflight[msg.id] = utt
        log.info("queued %s (%d chars%s)", msg.id, len(msg.text),
                 ", interrupt" if msg.interrupt else "")
        if msg.interrupt:
            self._interrupt(utt)
        else:
            self._backlog.append(utt)
        self._wake.set()

    def _interrupt(self, utt: Utterance) -> None:
        """Cut what is on air now, not when the interrupting speech is ready, and free the
        worker for it."""
        utt.holding = True
        self._backlog.appendleft(utt)
        busy, task = self.rendering, self._task
        if busy is None or task is None or task.done() or busy.cancelled is not None:
            self._program.interrupt()
            return
        task.cancel()
        log.info("%s: rendering stopped for interrupt %s", busy.id, utt.id)
        seg = busy.segment
        if seg is None:
            self._program.interrupt()
            self._back_to_backlog(busy)
            return

        def reply(taken: bool) -> None:  # on the pacer thread
            if taken:
                self._spawn(self._taken_back(busy))

        self._program.interrupt(take_back=seg, reply=reply)

    async def _taken_back(self, utt: Utterance) -> None:
        self._back_to_backlog(utt)

    def _back_to_backlog(self, utt: Utterance, front: bool = False) -> None:
        """A message whose rendering an interrupt stopped before it aired waits again, behind
        the interrupting messages; one cut by an encoder outage goes first (`front`). Either
        is rendered from the start."""
        if self._inflight.get(utt.id) is not utt:
            return  # settled meanwhile (a clear, a shutdown)
        utt.segment = None
        utt.marks.clear()
        utt.timings.clear()
        i = 0
        while not front and i < len(self._backlog) and self._backlog[i].urgent:
            i += 1
        self._backlog.insert(i, utt)
        if utt.urgent and not utt.holding:
            utt.holding = True
            self._program.hold()
        log.info("%s back in the backlog (%d ahead of it)", utt.id, i)
        self._wake.set()

    async def on_control(self, msg: ControlMessage) -> None:
        log.info("control: %s", msg.command)
        if msg.command == "skip":
            self._program.skip()
        elif msg.command == "clear":
            self._program.clear()
            while self._backlog:
                self._settle_now(self._backlog.popleft(), Outcome.CLEARED)
            if self.rendering is not None:
                self.rendering.cancelled = Outcome.CLEARED
            purged = await self._consumer().purge_speak()
            log.info("cleared the backlog (%d more purged from the queue)", purged)
        else:
            self.paused = msg.command == "pause"
            self._program.pause(self.paused)
        self._wake.set()

    # -- the render worker ---------------------------------------------------------------

    async def run(self) -> None:
        await self.speech_ready.wait()
        while True:
            utt = await self._next()
            self.rendering = utt
            self._attempts.begin(utt.id)
            task = asyncio.create_task(self._render(utt), name=f"render-{utt.id}")
            self._task = task
            try:
                # Not `await task`: a preempted render ends cancelled, the worker goes on.
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                raise
            finally:
                self.rendering = None
                self._task = None
            if not task.cancelled():
                task.result()

    async def _next(self) -> Utterance:
        while True:
            if self._backlog:
                head = self._backlog[0]
                room = self._program.pending_count <= self._playout.render_ahead
                if head.urgent or room:
                    return self._backlog.popleft()
            self._wake.clear()
            # Also woken by a timeout: the program frees room from its own thread.
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await self._wake.wait()

    async def _render(self, utt: Utterance) -> None:
        msg = utt.delivery.message
        slicer = FrameSlicer(self._spf)
        seg: Segment | None = None
        self._program.preparing += 1
        t0 = time.perf_counter()
        utt.marks["render_started_at"] = time.time()
        try:
            async with aclosing(self._speech.synthesize(msg.text, msg.voice)) as chunks:
                async for pcm in chunks:
                    if utt.cancelled is not None or (seg is not None and seg.done):
                        break
                    if seg is None:
                        utt.timings["tts_first_s"] = time.perf_counter() - t0
                        utt.marks["tts_first_at"] = time.time()
                        seg = Segment(msg.id, self._program.plan_start(), tag=utt,
                                      urgent=utt.urgent)
                        seg.min_unsealed = self._min_unsealed
                        seg.max_buffered = self._buffer_frames
                        utt.segment = seg
                        self._program.submit(seg, front=utt.urgent, release_hold=utt.holding)
                        utt.holding = False
                    await self._extend(utt, seg, slicer.push(pcm))
            if seg is not None and utt.cancelled is None and not seg.done:
                await self._extend(utt, seg, slicer.flush())
                if not len(seg.audio):
                    # Chunks that resampled to nothing: a segment of no frames never airs.
                    raise SpeechError("speech produced no audio", retryable=False)
                seg.sealed = True
                utt.timings["render_s"] = time.perf_counter() - t0
        except (SpeechError, RuntimeError, ValueError, OSError) as exc:
            log.error("%s: rendering failed: %s", msg.id, exc)
            self._fail(utt, seg, f"rendering failed: {exc}")
        except Exception as exc:
            # A bug, not the message's fault, but the worker must go on with the next one.
            log.exception("%s: rendering failed with an unexpected error", msg.id)
            self._fail(utt, seg, f"rendering failed (internal error {type(exc).__name__}: {exc})")
        else:
            if seg is None:
                if utt.cancelled is None:
                    utt.error = "speech produced no audio"
                self._settle_now(utt, utt.cancelled or Outcome.FAILED)
            elif utt.cancelled is not None:
                self._program.withdraw(seg, utt.cancelled)
            # else sealed, or already cut by the program, which reports its outcome
        finally:
            self._program.preparing -= 1

    def _fail(self, utt: Utterance, seg: Segment | None, error: str) -> None:
        utt.error = error[:1000]
        if seg is None:
            self._settle_now(utt, Outcome.FAILED)
        else:
            self._program.withdraw(seg, Outcome.FAILED)

    async def _extend(self, utt: Utterance, seg: Segment, audio: list[Pcm]) -> None:
        if not audio:
            return
        first = len(seg.audio)
        idle = self._program.idle
        indices = [idle.index(seg.planned_start + first + i) for i in range(len(audio))]
        audio_16k = await asyncio.to_thread(
            resample, np.concatenate(audio), self._rate, ANIMATOR_RATE
        )
        seg.audio.extend(audio)
        async with aclosing(self._face.render(audio_16k, indices)) as batches:
            async for batch in batches:
                if seg.done:  # cut while rendering: the rest would never air
                    break
                seg.frames.extend(batch)
                utt.marks.setdefault("frames_first_at", time.time())
                await self._room(utt, seg)

    async def _room(self, utt: Utterance, seg: Segment) -> None:
        """Wait while the segment holds a full buffer of frames not yet on air: memory is
        bounded by seconds of frames, not by the length of the text. The animator's thread
        waits meanwhile (its hand-off holds at most a batch or two). The pacer thread frees
        room a frame at a time; polling every two frames costs less than a wake-up per frame."""
        full = self._buffer_frames
        while seg.frames.held >= full and not seg.done and utt.cancelled is None:  # noqa: ASYNC110
            await asyncio.sleep(2 / self._program.fps)

    # -- outcomes ------------------------------------------------------------------------

    def segment_done(self, seg: Segment) -> None:
        """From the pacer or an encoder thread: hand over to the loop."""
        utt = seg.tag
        assert isinstance(utt, Utterance) and seg.outcome is not None
        self._spawn(self._settle(utt, seg.outcome))

    def _settle_now(self, utt: Utterance, outcome: Outcome) -> None:
        self._spawn(self._settle(utt, outcome))

    async def _settle(self, utt: Utterance, outcome: Outcome) -> None:
        if outcome is Outcome.RETRY:
            if utt.segment is not None:
                utt.segment.release()
            self._back_to_backlog(utt, front=True)
            return
        if utt.holding:
            utt.holding = False
            self._program.release_hold()
        consumer = self._consumer()
        raw = utt.delivery.raw
        if outcome.handled:
            self._handled.add(utt.id)
            await consumer.ack(raw)
        elif outcome is Outcome.FAILED:
            if await consumer.dead_letter(raw, utt.error or "rendering failed"):
                # Copied with its reason: a redelivery (the ack may miss a dead channel) is
                # acked, not failed and copied again.
                self._handled.add(utt.id)
        else:
            await consumer.requeue(raw)
        self._attempts.end(utt.id)
        self._inflight.pop(utt.id, None)
        self._record(utt, outcome)
        if utt.segment is not None:
            utt.segment.release()
            utt.segment = None
        self._wake.set()
        self._settled.set()

    def _record(self, utt: Utterance, outcome: Outcome) -> None:
        seg = utt.segment
        entry: dict[str, Any] = {
            "id": utt.id,
            "outcome": outcome.value,
            "received_at": utt.received,
            "settled_at": time.time(),
            **{k: round(v, 4) for k, v in utt.timings.items()},
            **utt.marks,
        }
        if utt.error:
            entry["error"] = utt.error
        if seg is not None:
            entry.update(
                frames=len(seg.audio), started_at=seg.started_at, ended_at=seg.ended_at,
                stream_run=seg.stream_run, stream_first=seg.stream_first,
                stream_last=seg.stream_last, aired_at=seg.aired_wall,
            )
        self.history.append(entry)
        log.info("settled %s: %s", utt.id, outcome.value)

    def rendering_status(self) -> dict[str, Any] | None:
        """The message the worker is rendering and how many of its frames are done."""
        busy = self.rendering
        if busy is None:
            return None
        seg = busy.segment
        return {"id": busy.id, "frames": len(seg.frames) if seg is not None else 0}

    # -- shutdown ------------------------------------------------------------------------

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def wait_settled(self) -> None:
        while self._inflight:
            self._settled.clear()
            await self._settled.wait()

    def requeue_waiting(self) -> None:
        """Shutdown: everything not on air goes back to RabbitMQ."""
        while self._backlog:
            self._settle_now(self._backlog.popleft(), Outcome.REQUEUED)
        on_air = self._program.on_air
        busy = self.rendering
        if busy is not None and (busy.segment is None or busy.segment is not on_air):
            busy.cancelled = Outcome.REQUEUED
        for utt in list(self._inflight.values()):
            if utt.segment is not None and utt.segment is not on_air:
                self._program.withdraw(utt.segment, Outcome.REQUEUED)

    def requeue_all(self) -> None:
        self.requeue_waiting()
        if self.rendering is not None:
            self.rendering.cancelled = Outcome.REQUEUED
        for utt in list(self._inflight.values()):
            if utt.segment is not None:
                self._program.withdraw(utt.segment, Outcome.REQUEUED)
