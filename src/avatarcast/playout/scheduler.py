"""From delivered messages to segments on air: admission, the backlog and the render worker.

Speak messages wait in an ordered backlog; one worker synthesizes and renders them one at a
time, at most `render_ahead` beyond the one on air. An `interrupt` cuts what is on air the
moment it arrives, jumps the backlog and preempts the worker: a message whose rendering it
stops goes back to the backlog unless it was already on air. The scheduler subscribes to the
program's outcomes and hops to its event loop with them; settle.py says what each means for
the message (ack, dead-letter, requeue) and does it.

Owned by the event loop; the program's threads reach it through `call_soon_threadsafe` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from ..avatar.face.looks import LookError, Looks
from ..broker.attempts import Attempts
from ..broker.consumer import Delivery
from ..broker.dedupe import HandledIds
from ..broker.messages import ControlMessage
from ..infra.logfmt import message_id
from ..infra.tasks import Tasks
from ..onair.program import Program
from ..onair.segment import Outcome, Segment
from ..settings import CaptionSettings, PlayoutSettings
from ..speech.chain import Speech
from ..speech.llm.chat import ChatClient
from .captions.record import AirRecord
from .lifecycle import Lifecycle
from .rendering import Renderer, Utterance
from .scene.backdrop import BackdropError, described, wanted
from .scene.compose import Compositor
from .settle import Broker, Settlement

log = logging.getLogger(__name__)

# Longest an interrupt's synthesis waits for its cut to reach the encoder (a tick, normally).
CUT_WAIT_S = 0.2


class Scheduler:
    def __init__(
        self,
        *,
        program: Program,
        speech: Speech,
        looks: Looks,
        broker: Broker,
        handled: HandledIds,
        attempts: Attempts,
        crash_limit: int,
        playout: PlayoutSettings,
        buffer_frames: int,
        sample_rate: int,
        tasks: Tasks,
        lifecycle: Lifecycle,
        captions: CaptionSettings | None = None,
        llm: ChatClient | None = None,
        scene: Compositor | None = None,
    ) -> None:
        captions = captions or CaptionSettings()
        self._loop = asyncio.get_running_loop()
        self.lifecycle = lifecycle
        self._program = program
        self._looks = looks
        self._speech = speech
        self._switching = asyncio.Lock()
        self._scene = scene
        self._broker = broker
        self._handled = handled
        self._attempts = attempts
        self._crash_limit = crash_limit
        self._playout = playout
        self._renderer = Renderer(
            program=program, speech=speech, looks=looks, sample_rate=sample_rate,
            min_unsealed=playout.min_buffer_ms * program.fps // 1000,
            buffer_frames=buffer_frames, captions=captions, llm=llm,
        )
        self._settlement = Settlement(
            broker=broker, handled=handled, attempts=attempts, lifecycle=lifecycle,
            air_record=AirRecord(
                transcript=captions.transcript_path, vtt=captions.vtt_path,
                sample_rate=sample_rate, fps=program.fps, max_chars=captions.max_chars,
                file_max_bytes=round(captions.file_max_mb * 1e6),
            ),
            spf=program.spf,
        )
        self._tasks = tasks
        self._backlog: deque[Utterance] = deque()
        self._inflight: dict[str, Utterance] = {}
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        # Set once shutdown began (requeue_waiting): nothing is rendered again after that.
        self._closing = False
        self.speech_ready = asyncio.Event()
        self.paused = False
        self.rendering: Utterance | None = None
        self._task: asyncio.Task[None] | None = None
        program.subscribe(self._from_program)

    @property
    def history(self) -> deque[dict[str, Any]]:
        """The last utterances settled, with their outcome and where they landed."""
        return self._settlement.history

    # -- arrivals ------------------------------------------------------------------------

    async def on_speak(self, d: Delivery) -> None:
        msg = d.message
        message_id.set(msg.id)  # this delivery's task: its log lines carry the id
        if msg.id in self._handled:
            log.info("duplicate delivery of %s (already handled): acked, not aired", msg.id)
            await self._broker.ack(d.raw)
            self.lifecycle.emit("duplicate", msg.id, reason="already handled: not aired again")
            return
        if (same := self._inflight.get(msg.id)) is not None:
            if same.delivery.replaced_by(d):
                # Redelivered after a reconnect: the work in hand carries on and is settled
                # on the channel that can still ack it.
                log.info("%s redelivered on a new channel; it settles there", msg.id)
                same.delivery = d
            else:
                log.info("duplicate delivery of %s (in flight): acked, not aired", msg.id)
                await self._broker.ack(d.raw)
            return
        if self._closing:
            # Delivered while the channel stops: left unsettled, the broker gives it back when
            # the connection closes (a requeue now would bring it straight back here).
            log.info("%s delivered while stopping: left to the broker", msg.id)
            return
        if (deaths := self._attempts.deaths(msg.id)) >= self._crash_limit:
            reason = (f"the daemon died {deaths} times while handling this message "
                      f"(broker.crash_limit={self._crash_limit}); not retried")
            if await self._broker.dead_letter(d.raw, reason):
                self._attempts.end(msg.id)
                self.lifecycle.emit("failed", msg.id, reason=reason)
            return
        utt = Utterance(d)
        self._inflight[msg.id] = utt
        log.info("queued %s (%d chars%s)", msg.id, len(msg.text),
                 ", interrupt" if msg.interrupt else "")
        self.lifecycle.emit("accepted", msg.id, received_at=utt.received,
                            interrupt=msg.interrupt, chars=len(msg.text))
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
        loop = asyncio.get_running_loop()
        cut_out = utt.cut_out = asyncio.Event()

        def cleared() -> None:  # on the pacer thread, or here
            loop.call_soon_threadsafe(cut_out.set)

        busy, task = self.rendering, self._task
        if busy is None or task is None or task.done() or busy.cancelled is not None:
            self._program.interrupt(cleared=cleared)
            return
        task.cancel()
        log.info("%s: rendering stopped for interrupt %s", busy.id, utt.id)
        seg = busy.segment
        if seg is None:
            self._program.interrupt(cleared=cleared)
            self._back_to_backlog(busy)
            return

        def reply(taken: bool) -> None:  # on the pacer thread
            if taken:
                self._loop.call_soon_threadsafe(self._back_to_backlog, busy)

        self._program.interrupt(take_back=seg, reply=reply, cleared=cleared)

    def _back_to_backlog(self, utt: Utterance, front: bool = False) -> None:
        """A message whose rendering an interrupt stopped before it aired waits again, behind
        the interrupting messages; one cut by an encoder outage goes first (`front`). Either
        is rendered from the start."""
        if self._inflight.get(utt.id) is not utt:
            return  # settled meanwhile (a clear, a shutdown)
        if self._closing:  # (nothing is rendered again once the channel stops)
            self._settle_now(utt, Outcome.REQUEUED)
            return
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

    async def on_control(self, msg: ControlMessage) -> str | None:
        """Act on a control message; the reason to dead-letter it, or None when done."""
        log.info("control: %s", msg.command)
        if msg.command == "set":
            return await self._set(msg.changes())
        if msg.command == "scene" and msg.layer == "background":
            return await self._change_background(msg)
        if msg.command == "scene":
            return self._change_scene(msg)
        if msg.command == "skip":
            busy, on_air = self.rendering, self._program.on_air
            if on_air is None and busy is not None:
                # Nothing airs: the one being made is what the viewer waits for (its speech
                # may never come: a silent LLM, a hung provider).
                self._stop_rendering(busy, Outcome.SKIPPED)
            else:
                self._program.skip()
                if busy is not None and busy.segment is not None and busy.segment is on_air:
                    self._stop_rendering(busy, Outcome.SKIPPED)  # its rest will not air
        elif msg.command == "clear":
            await self._clear()
        else:
            self.paused = msg.command == "pause"
            self._program.pause(self.paused)
        self._wake.set()
        return None

    async def _change_background(self, msg: ControlMessage) -> str | None:
        """A new background behind the person, from the next text on (a text rendering now
        finishes over the one it began with); the idle picture changes on a frame boundary."""
        if self._scene is None:
            return "scene: this channel has no scene"
        try:
            background = wanted(self._scene.scene, self._scene.base, visible=msg.visible,
                                color=msg.color, image=msg.image, video=msg.video)
        except BackdropError as exc:
            return f"scene: background: {exc}"
        async with self._switching:
            try:
                await self._looks.set_background(background)
            except LookError as exc:
                return f"scene: background: {exc}"
            self._program.set_default(self._looks.default.idle)
        self._scene.backdrop = described(background)
        self.lifecycle.emit("scene", "scene:background", layer="background",
                            visible=background is not None, background=self._scene.backdrop)
        return None

    def _change_scene(self, msg: ControlMessage) -> str | None:
        """A layer shown, hidden or reworded, from the next frame on (a `scene` event says
        at which frame of the stream it was made)."""
        assert msg.layer is not None
        if self._scene is None:
            return "scene: this channel has no scene"
        why = self._scene.apply(msg.layer, visible=msg.visible, title=msg.title,
                                subtitle=msg.subtitle, text=msg.text)
        if why is None:
            self.lifecycle.emit("scene", f"scene:{msg.layer}", layer=msg.layer,
                                visible=msg.visible, title=msg.title, subtitle=msg.subtitle,
                                text=msg.text)
        return why

    async def _clear(self) -> None:
        """Cut what is on air, drop the backlog, and purge what waits in RabbitMQ (the
        broker settles the cleared ones once its purge is done)."""
        self._program.clear()
        while self._backlog:
            self._settle_now(self._backlog.popleft(), Outcome.CLEARED)
        if self.rendering is not None:
            self._stop_rendering(self.rendering, Outcome.CLEARED)
        purged = await self._broker.purge_speak()
        log.info("cleared the backlog (%d more purged from the queue)", purged)

    async def _set(self, changes: dict[str, str | None]) -> str | None:
        """A new default avatar, animator and/or voice, from the next utterance on: all of it
        or, when a part cannot be had, none of it."""
        async with self._switching:
            voice = changes.get("voice")
            if voice is not None and (why := await self._speech.try_voice(voice)) is not None:
                return f"set: voice {voice!r} cannot speak: {why}"
            if "avatar" in changes or "animator" in changes:
                try:
                    look = await self._looks.switch(changes)
                except LookError as exc:
                    return f"set: {exc}"
                self._program.set_default(look.idle)
            if "voice" in changes:
                self._speech.voice = changes["voice"]
            log.info("set: %s", ", ".join(f"{k} {v or '(as configured)'}"
                                          for k, v in changes.items()))
            return None

    # -- the render worker ---------------------------------------------------------------

    async def run(self) -> None:
        await self.speech_ready.wait()
        while True:
            utt = await self._next()
            self.rendering = utt
            self._attempts.begin(utt.id)
            self.lifecycle.emit("rendering", utt.id)
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
            if self._backlog and not self._closing:
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
        message_id.set(utt.id)
        if (cut_out := utt.cut_out) is not None:
            # Its synthesis waits for the cut to reach the encoder (see CUT_CLEAR_TICKS); a
            # stopped pacer never says so, hence the bound.
            utt.cut_out = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CUT_WAIT_S):
                    await cut_out.wait()
        end = await self._renderer.render(utt)
        if end.error is not None:
            utt.error = end.error[:1000]
        if end.outcome is not None:
            self._settle_now(utt, end.outcome)

    def _stop_rendering(self, busy: Utterance, outcome: Outcome) -> None:
        """End the render in hand now, not when its speech next comes (it may never: a
        silent LLM, a hung provider). Without a segment it is settled here; with one, the
        program settles it: withdrawn here when it waits, cut by the caller when on air."""
        if busy.cancelled is not None:
            return
        busy.cancelled = outcome
        task = self._task
        if task is None or task.done() or self.rendering is not busy:
            return
        task.cancel()
        log.info("%s: rendering stopped (%s)", busy.id, outcome.value,
                 extra={"msg_id": busy.id})
        if busy.segment is None:
            self._settle_now(busy, outcome)
        elif busy.segment is not self._program.on_air:
            self._program.withdraw(busy.segment, outcome)

    # -- outcomes ------------------------------------------------------------------------

    def _from_program(self, seg: Segment) -> None:
        """A segment's outcome, from the pacer or an encoder writer thread: to the loop."""
        utt = seg.tag
        assert isinstance(utt, Utterance) and seg.outcome is not None
        self._loop.call_soon_threadsafe(self._settle_now, utt, seg.outcome)

    def segment_on_air(self, seg: Segment, run: int, frame: int) -> None:
        """On the pacer thread: a segment's first frame went to the encoder."""
        self._loop.call_soon_threadsafe(
            lambda: self.lifecycle.emit("on_air", seg.id, at_frame=(run, frame)))

    def _settle_now(self, utt: Utterance, outcome: Outcome) -> None:
        self._tasks.spawn(self._settle(utt, outcome), f"settle-{utt.id}")

    async def _settle(self, utt: Utterance, outcome: Outcome) -> None:
        message_id.set(utt.id)
        if outcome is Outcome.RETRY:
            if utt.segment is not None:
                utt.segment.release()
            if not self._closing:
                self._back_to_backlog(utt, front=True)
                return
            # (an encoder outage while the channel stops: back to the queue, not rendered
            # again here, by a channel that may have gone elsewhere)
            outcome = Outcome.REQUEUED
        if utt.holding:
            utt.holding = False
            self._program.release_hold()
        await self._settlement.settle(utt, outcome)
        self._inflight.pop(utt.id, None)
        await self._settlement.report(utt, outcome)
        self._wake.set()
        self._settled.set()

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
        """Shutdown: everything not on air goes back to RabbitMQ, and nothing is rendered
        again (a segment an encoder outage cuts goes back too)."""
        self._closing = True
        while self._backlog:
            self._settle_now(self._backlog.popleft(), Outcome.REQUEUED)
        on_air = self._program.on_air
        busy = self.rendering
        if busy is not None and (busy.segment is None or busy.segment is not on_air):
            self._stop_rendering(busy, Outcome.REQUEUED)
        for utt in list(self._inflight.values()):
            if utt.segment is not None and utt.segment is not on_air:
                self._program.withdraw(utt.segment, Outcome.REQUEUED)

    def requeue_all(self) -> None:
        self.requeue_waiting()
        if self.rendering is not None:
            self._stop_rendering(self.rendering, Outcome.REQUEUED)
        for utt in list(self._inflight.values()):
            if utt.segment is not None:
                self._program.withdraw(utt.segment, Outcome.REQUEUED)
