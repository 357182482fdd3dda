"""The daemon of one channel, in this process, against real RabbitMQ and FFmpeg: it starts
its parts in order and closes them in reverse, leaving no task, thread, child process or
port behind; a start that fails halfway closes what it had started; a background task that
dies is named in the status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from avatarcast.app.daemon import Daemon
from avatarcast.settings import (
    BrokerSettings,
    FaceSettings,
    HealthSettings,
    OutputSettings,
    Settings,
    SpeechSettings,
    VideoSettings,
    WebRTCSettings,
)
from harness.daemon import QueueNames
from harness.services import free_port

pytestmark = pytest.mark.services


def _settings(tmp_path: Path, queues: QueueNames, port: int) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        broker=BrokerSettings(speak_queue=queues.speak, control_queue=queues.control,
                              dead_letter_queue=queues.dead, events_exchange=queues.events),
        health=HealthSettings(port=port),
        video=VideoSettings(width=320, height=240, bitrate_kbps=400, preset="ultrafast"),
        output=OutputSettings(record_path=tmp_path / "program.mkv"),
        speech=SpeechSettings(providers=["espeak"]),
        face=FaceSettings(animator="still"),
        webrtc=WebRTCSettings(enabled=False),
    )


def _ffmpeg_children() -> list[str]:
    out = subprocess.run(["pgrep", "-P", str(os.getpid()), "ffmpeg"],
                         capture_output=True, text=True)
    return out.stdout.split()


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def _until(pred: Callable[[], object], limit_s: float) -> None:
    async with asyncio.timeout(limit_s):
        while not pred():  # noqa: ASYNC110 (polled: the status has no event to wait on)
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _started(daemon: Daemon) -> AsyncIterator[Daemon]:
    try:
        await daemon.start()
        yield daemon
    finally:
        await daemon.aclose()


async def test_close_is_start_reversed_and_leaves_nothing_behind(
    tmp_path: Path, queues: QueueNames,
) -> None:
    port = free_port()
    daemon = Daemon(_settings(tmp_path, queues, port))
    async with _started(daemon):
        st = daemon.status
        await _until(lambda: st()["encoder_alive"] and st()["broker_connected"], 60)
        assert await asyncio.to_thread(_healthz, port) == 200
        assert _ffmpeg_children()
        ch = daemon.channel
        assert ch is not None and ch.pacer.running
        assert len(daemon.tasks) >= 4  # events, render worker, watchdog, queue depth ...
    assert len(daemon.tasks) == 0
    assert not ch.pacer.running
    assert _ffmpeg_children() == []
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(_healthz, port)
    await daemon.aclose()  # a second close does nothing


async def test_a_start_that_fails_halfway_closes_what_it_started(
    tmp_path: Path, queues: QueueNames,
) -> None:
    port = free_port()
    with socket.socket() as taken:  # the HTTP port is someone else's: the start fails there
        taken.bind(("127.0.0.1", port))
        taken.listen()
        daemon = Daemon(_settings(tmp_path, queues, port))
        with pytest.raises(OSError):
            await daemon.run(handle_signals=False)
    # The encoder and the pacer had started before the HTTP port: both are gone.
    assert daemon.channel is not None and not daemon.channel.pacer.running
    assert _ffmpeg_children() == []
    assert len(daemon.tasks) == 0


async def test_a_background_task_that_dies_fails_the_daemon_naming_it(
    tmp_path: Path, queues: QueueNames,
) -> None:
    """Nothing restarts a task in place: the status names it (/healthz 503), and the daemon
    stops with exit code 1, for its supervisor to start it again."""
    daemon = Daemon(_settings(tmp_path, queues, free_port()))
    async with _started(daemon):
        ch = daemon.channel
        assert ch is not None and ch.consumer is not None

        async def broken() -> int | None:
            raise OSError("too many open files")

        ch.consumer.queue_depth = broken  # type: ignore[method-assign]
        await _until(lambda: daemon.status()["failed"] is not None, 30)
        want = "task queue-depth died: OSError: too many open files"
        assert daemon.status()["failed"] == want == daemon.status()["last_error"]
        assert daemon.exit_code == 1
