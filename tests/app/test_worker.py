"""A worker, in this process, against real RabbitMQ and FFmpeg: it takes its channel's lease
and runs the channel (its metrics labelled with the channel), nobody else can take that
channel meanwhile, and a worker that stops lets the lease go for another."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from avatarcast.app.channels import load_channels
from avatarcast.app.lease import Leases, lease_queue
from avatarcast.app.worker import Worker
from avatarcast.settings import (
    BrokerSettings,
    FaceSettings,
    FleetSettings,
    HealthSettings,
    Settings,
    SpeechSettings,
    VideoSettings,
    WebRTCSettings,
)
from harness.daemon import QueueNames
from harness.services import free_port

pytestmark = pytest.mark.services


async def test_a_worker_holds_its_channel_and_lets_it_go_when_it_stops(
    tmp_path: Path, queues: QueueNames,
) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text(f'[[channels]]\nid = "a"\noutput.record_path = "{tmp_path}/a.mkv"\n')
    base = Settings(
        state_dir=tmp_path / "state", channels_file=channels,
        broker=BrokerSettings(speak_queue=queues.speak, control_queue=queues.control,
                              dead_letter_queue=queues.dead, events_exchange=queues.events),
        health=HealthSettings(port=free_port()),
        fleet=FleetSettings(poll_s=0.2),
        video=VideoSettings(width=320, height=240, bitrate_kbps=400, preset="ultrafast"),
        speech=SpeechSettings(providers=["espeak"]), face=FaceSettings(animator="still"),
        webrtc=WebRTCSettings(enabled=False),
    )
    (channel,) = load_channels(base)
    lease = lease_queue(channel.broker)
    worker = Worker(base, [channel])
    other = Leases(base.broker, base.fleet)
    await other.connect()
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(60):
            while not (worker.status()["owned"] == ["a"]  # noqa: ASYNC110 (polled status)
                       and worker.status()["channels"]["a"].get("encoder_alive")):
                await asyncio.sleep(0.1)
        assert not await other.take(lease)  # one owner at a time
        assert b'avatarcast_frames_sent_total{channel="a"}' in worker.exposition()
    finally:
        worker.request_stop()
        async with asyncio.timeout(60):
            assert await running == 0
    try:
        assert await other.take(lease)  # let go: another worker may run it now
        await other.release(lease)
    finally:
        await other.aclose()
