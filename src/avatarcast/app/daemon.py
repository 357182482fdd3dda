"""The daemon: builds the components, starts them in order, and tears them down in reverse.

Signal handlers only set a flag. Shutdown stops consuming, lets the utterance on air finish
within the grace period (past it, the message is requeued), then ends the stream cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from ..avatar.face.looks import Looks
from ..broker.attempts import Attempts
from ..broker.consumer import Consumer
from ..broker.dedupe import HandledIds
from ..broker.events import EventPublisher
from ..onair.clock import FrameClock
from ..onair.encoder import Encoder
from ..onair.pacer import Pacer
from ..onair.program import Program
from ..onair.segment import Segment
from ..onair.state import StateMachine
from ..playout.lifecycle import Lifecycle
from ..playout.scheduler import Scheduler
from ..settings import Settings
from ..speech.base import SpeechError
from ..speech.chain import Speech, make_providers
from ..speech.llm.chat import ChatClient
from ..web.console.access import guarded
from ..web.console.preview import PreviewTap
from ..web.console.routes import Console
from ..web.metrics import Metrics, Snapshot
from ..web.parts import Part, add_part
from ..web.port import HealthServer
from ..web.webrtc.view import open_whep

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, settings: Settings, fence: Callable[[], bool] | None = None,
                 web_parts: bool = False) -> None:
        self.settings = settings
        self._fence = fence  # a fleet worker's: may this channel still publish?
        # A worker's channel: no HTTP port of its own, but a console and a WebRTC view for
        # the worker to serve under /ch/ID/ (`parts`).
        self._web_parts = web_parts
        self.parts: dict[str, Part] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._closed = False
        self.started_at = time.time()
        self.last_error: str | None = None
        self.exit_code = 0
        self.running = False  # started and not closed: status() and the metrics answer

    # -- task ownership ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.last_error = f"{task.get_name()}: {exc}"
            log.error("task %s died", task.get_name(), exc_info=exc)

    def spawn_threadsafe(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._loop.call_soon_threadsafe(self.spawn, coro)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        self.looks = Looks(s)
        idle = (await self.looks.start()).idle
        self.machine = StateMachine()
        self.speech = Speech(
            make_providers(s.speech, s.output.ffmpeg_path,
                           s.speech.cache_dir or s.state_dir / "voices"),
            s.speech, s.audio.sample_rate,
        )
        self.handled = HandledIds(s.state_dir / "handled-ids.log", s.broker.dedupe_capacity)
        self.handled.load()
        self.attempts = Attempts(s.state_dir / "attempts.json")
        self.attempts.load()
        spf = s.audio.sample_rate // s.video.fps
        self.program = Program(
            idle, fps=s.video.fps, spf=spf, crossfade_frames=s.playout.crossfade_frames,
            gap_frames=s.playout.gap_ms * s.video.fps // 1000,
            lead_frames=s.playout.lead_frames, machine=self.machine,
            on_done=lambda seg: self.scheduler.segment_done(seg),
        )
        self.lifecycle = Lifecycle(s.video.fps, lambda: self.pacer.position())
        self.metrics = Metrics(self._snapshot)
        self.events = EventPublisher(s.broker, s.channel)
        self.lifecycle.subscribe(self.metrics.observe)
        self.lifecycle.subscribe(self.events.send)
        self.queue_ready: int | None = None
        self.llm: ChatClient | None = None
        if s.llm.base_url is not None:
            self.llm = ChatClient(s.llm, attempts=s.speech.retry_attempts)
            await self.llm.start()
        self.scheduler = Scheduler(
            program=self.program, speech=self.speech, looks=self.looks,
            consumer_ref=lambda: self.consumer, handled=self.handled, attempts=self.attempts,
            crash_limit=s.broker.crash_limit, playout=s.playout,
            buffer_frames=s.playout.buffer_frames(s.video),
            sample_rate=s.audio.sample_rate, spawn=self.spawn_threadsafe, captions=s.captions,
            lifecycle=self.lifecycle, llm=self.llm,
        )
        self.consumer = Consumer(
            s.broker, self.scheduler.on_speak, self.scheduler.on_control,
            on_rejected=self._rejected,
        )
        self.encoder = Encoder(s.video, s.audio, s.output, on_state=self.program.encoder_up)
        self.pacer = Pacer(FrameClock(s.video.fps), self.program, self.encoder)
        self.pacer.fence = self._fence
        self.pacer.on_first_frame = self._first_frame
        # On air first: idle and silence need nothing else.
        self.encoder.start()
        await asyncio.to_thread(self.encoder.wait_up, 2.0)
        self.pacer.start()
        log.info("on air at %dx%d %d fps", s.video.width, s.video.height, s.video.fps)
        self.health: HealthServer | None = None
        if s.health.enabled or self._web_parts:
            self._open_parts()
        if s.health.enabled:
            self.health = HealthServer(s.health.host, s.health.port, self.status,
                                       self.metrics.exposition, self._add_parts)
            await self.health.start()
        await self.looks.start_animator()
        self.spawn(self._load_speech(), "speech-load")
        self.spawn(self.scheduler.run(), "render-worker")
        self.spawn(self.consumer.start(), "consumer-start")
        self.spawn(self._watch(), "watchdog")
        self.spawn(self.events.run(), "events")
        self.spawn(self._poll_queue(), "queue-depth")
        self.running = True

    def _open_parts(self) -> None:
        """The console and the WebRTC view, each where its settings and access rule allow
        (a line says why one is off), fed by the pacer's taps."""
        h = self.settings.health
        if h.console:
            serve, token = guarded(h, "web console")
            if serve:
                preview = PreviewTap(h.preview_fps, self.settings.video.fps,
                                     self.settings.video.height)
                self.pacer.taps.append(preview.offer)
                self.parts["console"] = Console(broker=self.settings.broker,
                                                status=self.status, preview=preview,
                                                token=token)
                log.info("web console at %s on the HTTP port%s", self._where(),
                         " (token required)" if token else "")
        whep = open_whep(self.settings, self._loop, self._where())
        if whep is not None:
            self.pacer.taps.append(whep.tap)
            whep.register(self.metrics.registry)
            self.parts["whep"] = whep

    def _where(self) -> str:
        """Where this daemon's parts are served: / or, in a worker, /ch/ID/."""
        return f"/ch/{self.settings.channel}/" if self._web_parts else "/"

    def _add_parts(self, app: web.Application) -> None:
        for part in self.parts.values():
            add_part(app, part)

    def _rejected(self, msg_id: str, reason: str) -> None:
        """A message dead-lettered before it was understood (bad body, wrong queue)."""
        self.lifecycle.emit("failed", msg_id, reason=reason)

    def _first_frame(self, seg: Segment, run: int, frame: int) -> None:
        """On the pacer thread: a segment's first frame went to the encoder."""
        self._loop.call_soon_threadsafe(
            lambda: self.lifecycle.emit("on_air", seg.id, at_frame=(run, frame)))

    async def _poll_queue(self) -> None:
        """How many messages wait in RabbitMQ, for /metrics (a passive declare every 5 s)."""
        while True:
            self.queue_ready = await self.consumer.queue_depth()
            await asyncio.sleep(5.0)

    async def _load_speech(self) -> None:
        try:
            await self.speech.start()
        except SpeechError as exc:
            self.last_error = str(exc)
            log.critical("%s", exc)
            self.exit_code = 3
            self._stop.set()
            return
        self.scheduler.speech_ready.set()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            if not self.pacer.running:
                self.last_error = f"pacer stopped: {self.pacer.error}"
                log.critical("%s", self.last_error)
                self.exit_code = 1
                self._stop.set()
                # Nothing feeds the encoder any more: end the stream now, not after the grace.
                await asyncio.to_thread(self.encoder.close)
                return

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("shutdown requested")
        self._stop.set()

    def off_air_now(self, reason: str) -> None:
        """Stop publishing at once (a fleet worker lost this channel's lease), then stop:
        what was taken from the queue goes back to it for the channel's next owner."""
        self.last_error = reason
        if hasattr(self, "pacer"):
            self.pacer.stop(timeout=0)  # on the event loop: signal it, never wait for it
        self.request_stop()

    async def run(self, handle_signals: bool = True) -> int:
        """Go on air, run until asked to stop (SIGTERM/SIGINT, or `request_stop` when a worker
        runs several channels), then stop cleanly; the exit code."""
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stop.wait()
            await self.shutdown()
        finally:
            await self.aclose()
        return self.exit_code

    async def shutdown(self) -> None:
        """Stop taking work, let the utterance on air finish, requeue the rest."""
        # Without its pacer nothing on air can finish: no grace then.
        grace = self.settings.shutdown.grace_s if self.pacer.running else 0.0
        await self.consumer.stop_consuming()
        self.scheduler.requeue_waiting()
        if not await self._wait_settled(grace):
            log.warning("grace period of %.0f s over; requeueing what is on air", grace)
            self.scheduler.requeue_all()
            await self._wait_settled(5.0)

    async def _wait_settled(self, limit_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                await self.scheduler.wait_settled()
        return not self.scheduler.inflight

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.running = False
        for task in list(self._tasks):
            if task.get_name() in ("render-worker", "watchdog", "consumer-start", "speech-load",
                                   "queue-depth"):
                task.cancel()
        if hasattr(self, "events"):
            # The last settlements' events go out before their sender is stopped.
            await self.events.flush(2.0)
            for task in list(self._tasks):
                if task.get_name() == "events":
                    task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(list(self._tasks), timeout=5.0)
            for task in stuck:
                stack = io.StringIO()
                task.print_stack(file=stack)
                log.error("task %s did not finish; cancelling it:\n%s", task.get_name(),
                          stack.getvalue())
                task.cancel()
        if hasattr(self, "pacer"):
            self.pacer.stop()
            await asyncio.to_thread(self.encoder.close)
            log.info(
                "stream ended: frames sent %d, dropped %d, late %d",
                self.pacer.frames_sent, self.pacer.frames_dropped,
                self.pacer.ticks_late + self.program.frames_late,
            )
        if hasattr(self, "events"):
            await self.events.aclose()
        if hasattr(self, "consumer"):
            await self.consumer.aclose()
        # Open previews and WebRTC viewers end; a worker serves this channel's pages no more.
        for part in self.parts.values():
            await part.aclose()
        self.parts.clear()
        if getattr(self, "health", None) is not None:
            assert self.health is not None
            await self.health.aclose()
        if getattr(self, "llm", None) is not None:
            assert self.llm is not None
            await self.llm.aclose()
        if hasattr(self, "speech"):
            await self.speech.aclose()
        if hasattr(self, "looks"):
            await self.looks.aclose()
        log.info("stopped")

    # -- status --------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        p, e = self.pacer, self.encoder
        return Snapshot(
            state=self.machine.state.value, frames_sent=p.frames_sent,
            frames_late=p.ticks_late + self.program.frames_late,
            frames_held=self.program.frames_late,
            frames_dropped=p.frames_dropped, encoder_alive=e.alive,
            encoder_restarts=e.restarts, encoder_uptime_s=e.uptime_s, encoder_pid=e.pid,
            broker_connected=self.consumer.connected, backlog=self.scheduler.inflight,
            queue_ready=self.queue_ready, dead_lettered=self.consumer.dead_lettered,
            events_dropped=self.events.dropped,
            outputs_up={o["name"]: bool(o["live"]) for o in e.outputs()},
        )

    def status(self) -> dict[str, Any]:
        p, e = self.pacer, self.encoder
        return {
            "channel": self.settings.channel,
            "state": self.machine.state.value,
            "encoder_alive": e.alive,
            "encoder_restarts": e.restarts,
            "outputs": e.outputs(),
            "broker_connected": self.consumer.connected,
            "frames_sent": p.frames_sent,
            "frames_dropped": p.frames_dropped,
            "frames_late": p.ticks_late + self.program.frames_late,
            # Of those, frames held (with silence) because the animator fell behind air.
            "frames_held": self.program.frames_late,
            "paused": self.scheduler.paused,
            "queued": self.scheduler.inflight,
            "on_air": on_air.id if (on_air := self.program.on_air) is not None else None,
            "rendering": self.scheduler.rendering_status(),
            "dead_lettered": self.consumer.dead_lettered,
            "speech_providers": self.speech.providers,
            "speech_ready": self.scheduler.speech_ready.is_set(),
            "animator": self.looks.default.animator,
            "avatar": self.looks.avatar_name(self.looks.default),
            "voice": self.speech.voice,
            "avatars_loaded": self.looks.loaded,
            "last_error": self.last_error or e.last_error,
            "uptime_s": round(time.time() - self.started_at, 1),
            "recent": list(self.scheduler.history),
        }
