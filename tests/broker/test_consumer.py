"""broker/consumer.py against the real RabbitMQ, when its connection is lost: a consumer that
was stopped while the connection was down must stay stopped when the connection comes back (a
channel going off air, a fleet worker woken after its lease went elsewhere: it must not take
the channel's messages from their new owner)."""

from __future__ import annotations

import asyncio

import pytest

from avatarcast.broker.consumer import Consumer, Delivery
from avatarcast.broker.messages import ControlMessage
from avatarcast.settings import BrokerSettings
from harness.daemon import AMQP, QueueNames, consumers, delete_queues
from harness.node_relay import relay

pytestmark = pytest.mark.services


class Taken:
    def __init__(self) -> None:
        self.speak: list[str] = []

    async def on_speak(self, d: Delivery) -> None:
        self.speak.append(d.message.id)

    async def on_control(self, msg: ControlMessage) -> str | None:
        return None


def test_a_consumer_stopped_while_its_connection_is_down_stays_stopped_when_it_is_back(
    rabbitmq: None, queues: QueueNames,
) -> None:
    async def run() -> tuple[int, int, int]:
        async with relay() as node1:
            s = BrokerSettings.model_validate({
                "urls": [f"amqp://guest:guest@127.0.0.1:{node1.port}/", AMQP],
                "speak_queue": queues.speak, "control_queue": queues.control,
                "dead_letter_queue": queues.dead, "events_exchange": queues.events,
                "reconnect_interval_s": 0.2, "ledger": "off",
            })
            consumer = Consumer(s)
            await consumer.start(Taken())
            consuming = await asyncio.to_thread(consumers, queues.speak)
            back = asyncio.Event()
            assert consumer._conn is not None
            lost = asyncio.Event()
            consumer._conn.reconnect_callbacks.add(lambda *_: back.set())
            consumer._conn.close_callbacks.add(lambda *_: lost.set())
            node1.stop()  # the node is lost: the connection goes down, then on to the next
            async with asyncio.timeout(30):
                await lost.wait()
            assert not consumer.connected
            await consumer.stop_consuming()  # e.g. the channel went off air meanwhile
            async with asyncio.timeout(30):
                await back.wait()
            await asyncio.sleep(1.0)  # (what is restored, is restored by now)
            after = (await asyncio.to_thread(consumers, queues.speak),
                     await asyncio.to_thread(consumers, queues.control))
            await consumer.aclose()
            return consuming, *after

    consuming, speak_after, control_after = asyncio.run(asyncio.wait_for(run(), 90))
    delete_queues(queues)
    assert consuming == 1
    assert (speak_after, control_after) == (0, 0)
