"""Bodies far over the 64 KiB limit (RabbitMQ takes up to 128 MiB by default), against the real
daemon and RabbitMQ: the daemon never holds one whole, each is dead-lettered with its size in
the reason and only a prefix of it in the dead letter, and the dead-letter queue is bounded.
An existing dead-letter queue declared otherwise is kept as it is."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import aio_pika
import pytest

from avatarcast.broker.bounded import BODY_SIZE_HEADER, KEPT_PREFIX
from avatarcast.broker.topology import declare
from avatarcast.settings import BrokerSettings
from harness.daemon import AMQP, DaemonProc, QueueNames, drain, publish

pytestmark = pytest.mark.services

BIG = 20_000_000  # bytes: 8 of them, 160 MB
COUNT = 8
DEAD_MAX = 5


def _body(i: int) -> bytes:
    head = b'{"type": "speak", "id": "big-%d", "text": "' % i
    return head + b"a" * (BIG - len(head) - 2) + b'"}'


async def _publish_big(queue: str) -> None:
    conn = await aio_pika.connect(AMQP)
    async with conn:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        for i in range(COUNT):
            await ch.default_exchange.publish(
                aio_pika.Message(_body(i), message_id=f"big-{i}"), routing_key=queue,
                mandatory=True)


class PeakRss:
    """The daemon's resident memory sampled every 20 ms, its peak kept."""

    def __init__(self, daemon: DaemonProc) -> None:
        self._daemon, self.peak = daemon, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.02):
            try:
                self.peak = max(self.peak, self._daemon.rss_mib())
            except OSError:
                return

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak


def test_big_bodies_are_dead_lettered_without_being_held(
    tmp_path: Path, queues: QueueNames
) -> None:
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_BROKER__DEAD_LETTER_MAX_MESSAGES": str(DEAD_MAX)})
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        before = daemon.rss_mib()
        rss = PeakRss(daemon)
        asyncio.run(_publish_big(queues.speak))
        publish(queues.speak, {"type": "speak", "id": "good", "text": "Still here."})
        st = daemon.wait_for(lambda s: daemon.outcomes(s).get("good") == "aired", 90, "good")
        grew = rss.stop() - before
        print(f"memory grew by {grew:.0f} MiB")
        assert st["dead_lettered"] == COUNT
        assert daemon.stop() == 0, daemon.log()[-3000:]
    finally:
        daemon.kill()
    # One body held whole is 20 MB (its copy to the dead-letter queue another 20), and the
    # prefetch lets RabbitMQ send all 160 MB at once: held, memory grows by 100s of MiB; read
    # in bounded frames and dropped, by a few (the text that aired, its speech, its frames).
    assert grew < 60, f"the daemon's memory grew by {grew:.0f} MiB"
    dead = drain(queues.dead)
    # The queue keeps the newest DEAD_MAX; the older ones were dropped from its head.
    assert [m.message_id for m in dead] == [f"big-{i}" for i in range(COUNT - DEAD_MAX, COUNT)]
    for m in dead:
        headers = m.headers or {}
        assert headers.get("x-avatarcast-reason") == (
            f"body too large: {BIG} bytes, over the 64 KiB limit"), headers
        assert headers.get(BODY_SIZE_HEADER) == BIG
        i = int(str(m.message_id).split("-")[1])
        assert m.body == _body(i)[:KEPT_PREFIX]


async def _existing_dead_queue_is_kept(queues: QueueNames) -> dict[str, object]:
    settings = BrokerSettings(speak_queue=queues.speak, control_queue=queues.control,
                              dead_letter_queue=queues.dead)
    conn = await aio_pika.connect(AMQP)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        await ch.declare_queue(queues.dead, durable=True)  # as releases before this one did
        found = await declare(ch, settings)
        # The channel still works, and the queue is the one that was there.
        await ch.default_exchange.publish(aio_pika.Message(b"x"), routing_key=queues.dead)
        count = (await ch.declare_queue(queues.dead, durable=True)).declaration_result
        return {"dead": found.dead.name, "count": count.message_count}


def test_an_existing_dead_letter_queue_is_kept_with_one_warning(
    queues: QueueNames, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="avatarcast.broker.topology"):
        got = asyncio.run(_existing_dead_queue_is_kept(queues))
    assert got == {"dead": queues.dead, "count": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and queues.dead in warnings[0] and "used as it is" in warnings[0], \
        warnings
