"""The three-node RabbitMQ cluster of harness/cluster.py, tested against itself: a quorum queue
has a member on each node and carries a message from one node to another; it stays usable
with one node SIGKILLed, which comes back into the cluster; and with two nodes of three stopped
(no quorum) a publisher's confirm does not come: RabbitMQ 3.10 nacks the message after about
15 s and never enqueues it, and once the nodes are back a new message goes through.

The cluster is tests/conftest.py's: `rabbit_cluster` (one per session) and `cluster` (the same,
whole again after each test: nodes thawed, restarted, partitions healed)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue
from aiormq.exceptions import DeliveryError
from pamqp.commands import Basic
from pamqp.common import FieldTable

from harness.cluster import RabbitCluster

pytestmark = pytest.mark.services
QUORUM: FieldTable = {"x-queue-type": "quorum"}


@asynccontextmanager
async def _channel(url: str) -> AsyncIterator[AbstractChannel]:
    """A channel with publisher confirms (aio_pika's default)."""
    conn = await aio_pika.connect(url, timeout=10)
    try:
        yield await conn.channel()
    finally:
        await conn.close()


def _persistent(body: bytes) -> aio_pika.Message:
    return aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


async def _take(queue: AbstractQueue, count: int, within_s: float = 10) -> list[bytes]:
    """The bodies of the next `count` messages (acked), then checks that none is left."""
    bodies: list[bytes] = []
    deadline = time.monotonic() + within_s
    while len(bodies) < count:
        msg = await queue.get(fail=False, timeout=5)
        if msg is None:
            assert time.monotonic() < deadline, f"only {bodies} after {within_s} s"
            await asyncio.sleep(0.1)
            continue
        assert msg.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        bodies.append(msg.body)
        await msg.ack()
    assert await queue.get(fail=False, timeout=5) is None, "more messages than expected"
    return bodies


def _name() -> str:
    return f"cluster-test-{uuid.uuid4().hex[:8]}"


async def test_quorum_queue_spans_the_cluster(cluster: RabbitCluster) -> None:
    name = _name()
    async with _channel(cluster.url(0)) as ch1:
        await ch1.declare_queue(name, durable=True, arguments=QUORUM)
        info = await asyncio.to_thread(cluster.queue_info, name)
        assert info["type"] == "quorum"
        assert sorted(info["members"]) == sorted(info["online"]) == sorted(cluster.nodes)
        confirm = await ch1.default_exchange.publish(_persistent(b"one"), name, timeout=10)
        assert isinstance(confirm, Basic.Ack)
    async with _channel(cluster.url(2)) as ch3:
        queue = await ch3.declare_queue(name, passive=True)
        assert await _take(queue, 1) == [b"one"]
        await queue.delete(if_unused=False, if_empty=False)


async def test_queue_outlives_a_killed_node(cluster: RabbitCluster) -> None:
    name = _name()
    async with _channel(cluster.url(0)) as ch1:
        await ch1.declare_queue(name, durable=True, arguments=QUORUM)
        await ch1.default_exchange.publish(_persistent(b"before"), name, timeout=10)
        assert (await asyncio.to_thread(cluster.queue_info, name))["leader"] == cluster.nodes[0]

    await asyncio.to_thread(cluster.kill, 0)
    t0 = time.monotonic()  # its peers see it gone at once (measured: by the first look)
    while sorted(await asyncio.to_thread(cluster.running)) != sorted(cluster.nodes[1:]):
        assert time.monotonic() - t0 < 5, "node 1 killed, still running for its peers"
    async with _channel(cluster.url(1)) as ch2:
        queue = await ch2.declare_queue(name, passive=True)
        # Its leader died with node 1: the confirm waits for a new one to be elected.
        confirm = await ch2.default_exchange.publish(_persistent(b"after"), name, timeout=20)
        assert isinstance(confirm, Basic.Ack)
        assert await _take(queue, 2) == [b"before", b"after"]
        info = await asyncio.to_thread(cluster.queue_info, name)
        assert info["leader"] in cluster.nodes[1:]
        assert sorted(info["online"]) == sorted(cluster.nodes[1:])

        await asyncio.to_thread(cluster.start_node, 0)
        assert sorted(await asyncio.to_thread(cluster.running)) == sorted(cluster.nodes)
        info = await asyncio.to_thread(cluster.queue_info, name)
        assert sorted(info["online"]) == sorted(cluster.nodes)
        await queue.delete(if_unused=False, if_empty=False)


async def test_no_quorum_no_confirm(cluster: RabbitCluster) -> None:
    name = _name()
    async with _channel(cluster.url(0)) as ch1:
        await ch1.declare_queue(name, durable=True, arguments=QUORUM)
        await asyncio.gather(asyncio.to_thread(cluster.stop, 1),
                             asyncio.to_thread(cluster.stop, 2))
        assert await asyncio.to_thread(cluster.running) == [cluster.nodes[0]]

        t0 = time.monotonic()
        publish = asyncio.create_task(ch1.default_exchange.publish(_persistent(b"lost"), name))
        done, _ = await asyncio.wait({publish}, timeout=5)
        assert not done, f"without a quorum the publish ended: {publish}"
        # What 3.10 does: a nack, about 15 s after the publish; the channel stays open.
        with pytest.raises(DeliveryError) as refused:
            await asyncio.wait_for(publish, 30)
        waited = time.monotonic() - t0
        assert isinstance(refused.value.frame, Basic.Nack)
        assert 10 < waited < 25, waited
        assert not ch1.is_closed

        await asyncio.gather(asyncio.to_thread(cluster.start_node, 1),
                             asyncio.to_thread(cluster.start_node, 2))
        assert sorted(await asyncio.to_thread(cluster.running)) == sorted(cluster.nodes)
        confirm = await ch1.default_exchange.publish(_persistent(b"again"), name, timeout=20)
        assert isinstance(confirm, Basic.Ack)
        queue = await ch1.declare_queue(name, passive=True)
        assert await _take(queue, 1) == [b"again"]  # the nacked one was never enqueued
        await queue.delete(if_unused=False, if_empty=False)
