"""Ten thousand texts queued at once: the daemon holds only its prefetch of them, keeps the
stream's cadence and its memory, and `clear` empties the backlog, in the daemon and in RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aio_pika
import pytest

from harness.daemon import AMQP, DaemonProc, QueueNames, publish, queue_depth

pytestmark = pytest.mark.services

COUNT = 10_000


async def flood(queue: str, count: int) -> None:
    conn = await aio_pika.connect(AMQP)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        for start in range(0, count, 500):
            await asyncio.gather(*(
                ch.default_exchange.publish(
                    aio_pika.Message(json.dumps({
                        "type": "speak", "id": f"flood-{i}", "text": f"Queued text {i}.",
                    }).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue,
                )
                for i in range(start, min(count, start + 500))
            ))


def test_ten_thousand_queued_texts(tmp_path: Path, queues: QueueNames) -> None:
    daemon = DaemonProc(tmp_path, queues, {})
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        idle = daemon.rss_mib()
        asyncio.run(flood(queues.speak, COUNT))
        st = daemon.wait_for(lambda s: s["on_air"] is not None, 60, "talking")
        peak = idle
        for _ in range(40):  # 10 s of working through the backlog
            peak = max(peak, daemon.rss_mib())
            time.sleep(0.25)
        st = daemon.status()
        assert st is not None
        held = st["queued"]
        assert held <= 32  # the prefetch, not the backlog
        assert queue_depth(queues.speak) >= COUNT - 100
        publish(queues.control, {"type": "control", "command": "clear"})
        st = daemon.wait_for(lambda s: s["queued"] == 0 and s["state"] == "idle", 30, "cleared")
        assert queue_depth(queues.speak) == 0
        assert st["frames_dropped"] == 0
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    outcomes = [e["outcome"] for e in st["recent"]]
    assert "cleared" in outcomes and "aired" in outcomes
    print(f"held {held} of {COUNT}; resident memory idle {idle:.0f} MiB, peak {peak:.0f} MiB")
    assert peak - idle < 150
