"""The daemon of one channel: builds its parts (build.py), starts them in order, each start
followed by its close on an exit stack, and closes them in reverse.

Signal handlers only set a flag. Shutdown stops consuming, lets the utterance on air finish
within the grace period (past it, the message is requeued), then ends the stream cleanly.
Owned by the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from ..avatar.face.looks import Looks
from ..broker.consumer import Consumer
from ..infra.tasks import Tasks
from ..onair.encoder import Encoder
from ..settings import Settings
from ..speech.base import SpeechError
from ..web.parts import Part, add_part
from ..web.port import HttpPort
from .build import Channel, build, scene_background

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, settings: Settings, fence: Callable[[], bool] | None = None,
                 web_parts: bool = False) -> None:
        self.settings = settings
        self._fence = fence  # a fleet worker's: may this channel still publish?
        # A worker's channel: no HTTP port of its own, but a console and a WebRTC view for
        # the worker to serve under /ch/ID/ (`parts`).
        self._web_parts = web_parts
        self.tasks = Tasks(on_death=self._task_died)
        self._stack = contextlib.AsyncExitStack()
        self._stop = asyncio.Event()
        self._orderly = False  # the stop was asked for
        self._closed = False
        self.started_at = time.time()
        self.last_error: str | None = None
        self.exit_code = 0
        self.failed: str | None = None  # why it stops by itself, if it does
        self.running = False  # started and not closed: status() and the metrics answer
        self.channel: Channel | None = None

    def _task_died(self, name: str, exc: BaseException) -> None:
        # Nothing restarts a task in place (its state, the message it held, are gone with
        # it): the daemon stops, unhealthy, and systemd or the fleet worker starts it again.
        self.fail(f"task {name} died: {type(exc).__name__}: {exc}")

    def fail(self, reason: str) -> None:
        """Something the daemon depends on broke: /healthz says 503 naming it at once, and
        the daemon stops, exit code 1, for its supervisor to start it again."""
        if self.failed is None:
            log.critical("%s; stopping (exit code 1) to be started again", reason)
            self.failed = reason
        self.last_error = reason
        self.exit_code = 1
        self._stop.set()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        s, stack = self.settings, self._stack
        stack.push_async_callback(self.tasks.aclose)  # the very last: whatever still runs
        looks = Looks(s, background=scene_background(s))
        stack.push_async_callback(looks.aclose)
        await looks.start()
        ch = self.channel = build(s, looks=looks, tasks=self.tasks, status=self.status,
                                  fence=self._fence, where=self._where())
        # Closed after everything that could still take a message up.
        stack.callback(self._release_attempts)
        consumer, encoder = _real(ch)
        if ch.music is not None:  # (its feeder runs from the build on)
            stack.push_async_callback(asyncio.to_thread, ch.music.bed.close)
        stack.push_async_callback(ch.speech.aclose)  # loaded by a task, below
        if ch.llm is not None:
            stack.push_async_callback(ch.llm.aclose)
            await ch.llm.start()
        stack.push_async_callback(ch.events.aclose)
        self._background(ch.events.run(), "events")
        # The last settlements' events go out before their sender is stopped.
        stack.push_async_callback(ch.events.flush, 2.0)
        # On air first: idle and silence need nothing else.
        stack.push_async_callback(asyncio.to_thread, encoder.close)
        encoder.start()
        await asyncio.to_thread(encoder.wait_up, 2.0)
        stack.push_async_callback(self._end_stream)
        ch.pacer.start()
        log.info("on air at %dx%d %d fps", s.video.width, s.video.height, s.video.fps)
        await self._serve_parts(ch.parts)
        await looks.start_animator()
        # The broker's connection outlives the tasks that use it (their settlements ack on
        # it); the tasks still settling get their time before it closes.
        stack.push_async_callback(consumer.aclose)
        stack.push_async_callback(self.tasks.drain, 5.0)
        self._background(self._load_speech(), "speech-load")
        self._background(ch.scheduler.run(), "render-worker")
        self._background(self._watch(), "watchdog")
        if ch.depth is not None:
            self._background(ch.depth.run(), "queue-depth")
        if ch.disk is not None and ch.disk.needed:
            self._background(ch.disk.run(), "disk-watch")
        self._background(consumer.start(ch.scheduler), "consumer-start")
        self.running = True

    def _background(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """A task for as long as the daemon runs: cancelled when the close gets back here."""
        task = self.tasks.spawn(coro, name, lasting=True)
        self._stack.push_async_callback(self.tasks.stop, task)

    async def _serve_parts(self, parts: dict[str, Part]) -> None:
        """The console and the WebRTC view: on this daemon's HTTP port, or (in a worker) on
        the worker's, which serves them while they are in `parts`."""
        h = self.settings.health
        if h.enabled and not self._web_parts:
            http = HttpPort(h.host, h.port, self.status, self.channel_metrics,
                            self._add_parts)
            self._stack.push_async_callback(http.aclose)
            await http.start()
        # At close: open previews and WebRTC viewers end first, then the pages go.
        self._stack.callback(parts.clear)
        for part in parts.values():
            self._stack.push_async_callback(part.aclose)

    def _where(self) -> str | None:
        """Where this daemon's parts are served: / or, in a worker, /ch/ID/ (None: nowhere)."""
        if self._web_parts:
            return f"/ch/{self.settings.channel}/"
        return "/" if self.settings.health.enabled else None

    @property
    def parts(self) -> dict[str, Part]:
        return self.channel.parts if self.channel is not None else {}

    def _add_parts(self, app: web.Application) -> None:
        for part in self.parts.values():
            add_part(app, part)

    def channel_metrics(self) -> bytes:
        assert self.channel is not None
        return self.channel.metrics.exposition()

    async def _end_stream(self) -> None:
        assert self.channel is not None
        ch = self.channel
        ch.pacer.stop()
        log.info("stream ended: frames sent %d, dropped %d, late %d", ch.pacer.frames_sent,
                 ch.pacer.frames_dropped, ch.figures.frames_late)

    async def _load_speech(self) -> None:
        assert self.channel is not None
        try:
            await self.channel.speech.start()
        except SpeechError as exc:
            self.last_error = str(exc)
            log.critical("%s", exc)
            self.exit_code = 3
            self._stop.set()
            return
        self.channel.scheduler.speech_ready.set()

    async def _watch(self) -> None:
        assert self.channel is not None
        pacer, encoder = self.channel.pacer, _real(self.channel)[1]
        while True:
            await asyncio.sleep(0.5)
            if not pacer.running:
                self.fail(f"pacer stopped: {pacer.error}")
                # Nothing feeds the encoder any more: end the stream now, not after the grace.
                await asyncio.to_thread(encoder.close)
                return

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("shutdown requested")
        if self.failed is None:
            self._orderly = True
        self._stop.set()

    def _release_attempts(self) -> None:
        # Asked to stop (SIGTERM, a lease lost): what it did not settle did not kill it. A
        # stop for any other cause may be the message's doing: that still counts.
        if self._orderly and self.channel is not None:
            self.channel.attempts.release()

    def off_air_now(self, reason: str) -> None:
        """Stop publishing at once (a fleet worker lost this channel's lease), then stop:
        what was taken from the queue goes back to it for the channel's next owner."""
        self.last_error = reason
        if self.channel is not None:
            self.channel.pacer.stop(timeout=0)  # on the event loop: signal it, never wait
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
        """Stop taking work, let the utterance on air finish, requeue the rest. Off air (its
        lease went elsewhere, its encoder died), or once it goes off air meanwhile, nothing on
        air can finish: all it holds goes back to the queue at once."""
        assert self.channel is not None
        ch = self.channel
        if ch.pacer.running:
            await _real(ch)[0].stop_consuming()
            ch.scheduler.requeue_waiting()
            grace = self.settings.shutdown.grace_s
            if await self._wait_settled(grace, on_air=True):
                return
            if ch.pacer.running:
                log.warning("grace period of %.0f s over; requeueing what is on air", grace)
                ch.scheduler.requeue_all()
                await self._wait_settled(5.0)
                return
        log.warning("off air: requeueing all it holds")
        ch.scheduler.requeue_all()
        # No tick will come to carry the withdrawals out: the program does, once the pacer's
        # thread (which may be in its last tick) has ended.
        await asyncio.to_thread(ch.pacer.stop)
        ch.program.carry_out()
        await _real(ch)[0].stop_consuming()
        await self._wait_settled(5.0)

    async def _wait_settled(self, limit_s: float, on_air: bool = False) -> bool:
        """Whether everything taken was settled within `limit_s` (`on_air`: given up as soon
        as the pacer stops, since what is on air cannot finish then)."""
        assert self.channel is not None
        ch = self.channel
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                while ch.scheduler.inflight and not (on_air and not ch.pacer.running):
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.1):
                            await ch.scheduler.wait_settled()
        return not ch.scheduler.inflight

    async def aclose(self) -> None:
        """Close what was started, in reverse (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.running = False
        await self._stack.aclose()
        log.info("stopped")

    # -- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        assert self.channel is not None
        return self.channel.figures.status(last_error=self.last_error,
                                           started_at=self.started_at, failed=self.failed)


def _real(ch: Channel) -> tuple[Consumer, Encoder]:
    """The daemon's channel talks to the real RabbitMQ and FFmpeg (build makes them)."""
    assert ch.consumer is not None and ch.encoder is not None
    return ch.consumer, ch.encoder
