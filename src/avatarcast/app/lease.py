"""Who runs a channel, decided by RabbitMQ: a channel's lease is an exclusive queue
(`<speak queue>.owner`). The broker lets one connection at a time declare it, and deletes it
when that connection dies, whether it closed (a process killed: at once) or went silent (a
network partition, a frozen machine: after the heartbeat timeout).

The leases live on a plain connection (not a robust one: a reconnect must never take a lease
back on its own). The holder confirms its leases every `fence_s / 3` with a round trip to the
broker; `valid()` is False once no round trip has succeeded for `fence_s`, which is shorter
than the heartbeat timeout, so a holder that is cut off stops publishing before the broker can
give its channels to another worker. The pacer checks `valid()` before every frame.

With a cluster of several nodes, losing the node that held the connection need not take the
channels off air: `rejoin` connects to the next node and takes each lease back within what is
left of the fence (the broker deletes a dead node's exclusive queues, so a lease is free again
at once). A lease another worker took in between is reported lost; its channel must stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import ChannelLockedResource

from ..broker.connection import connect as connect_broker
from ..broker.failures import BROKER_ERRORS, describe
from ..broker.nodes import Rotation, node_urls
from ..settings import BrokerSettings, FleetSettings

log = logging.getLogger(__name__)

RETAKE_S = 0.1  # between tries to take back a lease found locked, after a node died


def lease_queue(channel_broker: BrokerSettings) -> str:
    """The lease of the channel whose (derived) broker settings these are."""
    return f"{channel_broker.speak_queue}.owner"


class LeaseLost(RuntimeError):
    """The connection that held the leases is gone (`answered`: it was closed, or an answer
    said a lease is gone; not: the broker stopped answering, the connection still open)."""

    def __init__(self, text: str, *, answered: bool = True) -> None:
        super().__init__(text)
        self.answered = answered


class Leases:
    """Owned by the event loop; `valid` may be read from any thread."""

    def __init__(self, broker: BrokerSettings, fleet: FleetSettings) -> None:
        self._broker = broker
        self._fleet = fleet
        self._conn: AbstractConnection | None = None
        self._held: dict[str, AbstractChannel] = {}  # lease queue -> the AMQP channel of it
        self._valid_until = 0.0
        self._nodes = Rotation(node_urls(broker))  # (a connection starts where the last did)
        # Set when the connection closes under the holder (its node died): the holder
        # confirms at once, and rejoins, instead of at its next round.
        self.lost = asyncio.Event()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed

    def valid(self) -> bool:
        return time.monotonic() < self._valid_until

    async def connect(self) -> None:
        """Raises a broker error when the broker cannot be reached."""
        self._conn = await self._connect()
        self._held.clear()
        self._valid_until = time.monotonic() + self._fleet.fence_s

    async def _connect(self, timeout_s: float | None = None) -> AbstractConnection:
        conn = await connect_broker(
            self._broker, name=f"avatarcast-worker {self.worker}",
            heartbeat_s=self._fleet.heartbeat_s,
            connect_timeout_s=timeout_s or max(2.0, self._fleet.fence_s), rotation=self._nodes,
        )
        self.lost.clear()
        conn.close_callbacks.add(self._closed)
        return conn

    async def _closed(self, conn: object, exc: BaseException | None = None) -> None:
        if conn is self._conn:
            self.lost.set()

    async def rejoin(self) -> list[str]:
        """After the connection closed under the holder (its node died): connect again, to the
        next node first, and take back every lease held, before the fence runs out (the leases
        stay valid meanwhile; the next `confirm` extends them). A lease found locked is tried
        again until then: for a moment after a node dies, the cluster still counts its
        connections' exclusive queues, this one's own included. Returns the leases still held
        by another connection at the end. Raises LeaseLost when no node answers in time."""
        held = list(self._held)
        await self._drop_connection()
        deadline = self._valid_until
        left = deadline - time.monotonic()
        if left <= 0:
            raise LeaseLost("the fence ran out before a node could be tried")
        self._nodes.advance()
        try:
            async with asyncio.timeout(left):
                # Each node gets its share of the time left: one that hangs is not waited on
                # for all of it.
                self._conn = await self._connect(timeout_s=max(0.5, left / len(self._nodes)))
                locked = held
                while True:
                    locked = [queue for queue in locked if not await self.take(queue)]
                    if not locked or deadline - time.monotonic() < 2 * RETAKE_S:
                        return locked
                    await asyncio.sleep(RETAKE_S)
        except TimeoutError:
            raise LeaseLost(f"no broker node answered within the fence ({left:.1f} s "
                            "left)") from None
        except LeaseLost:
            raise
        except BROKER_ERRORS as exc:
            raise LeaseLost(describe(exc)) from None

    async def take(self, queue: str) -> bool:
        """Try to take a lease: True once held, False when another connection holds it (or
        the broker refused this one: a line says why). Raises LeaseLost when the connection
        is gone."""
        if self._conn is None or self._conn.is_closed:
            raise LeaseLost("no connection to the broker")
        try:
            channel = await self._conn.channel()
            await channel.declare_queue(queue, exclusive=True, auto_delete=False)
        except ChannelLockedResource:
            return False  # (the broker closed that AMQP channel)
        except BROKER_ERRORS as exc:
            if self._conn.is_closed:
                raise LeaseLost(describe(exc)) from None
            # (an AMQP channel error: this lease only, e.g. a permission the user lacks)
            log.warning("cannot take the lease %s: %s", queue, describe(exc))
            return False
        self._held[queue] = channel
        return True

    async def release(self, queue: str) -> None:
        channel = self._held.pop(queue, None)
        if channel is None:
            return
        try:
            await channel.queue_delete(queue)
            await channel.close()
        except BROKER_ERRORS as exc:
            log.warning("releasing %s: %s (the broker frees it with the connection)", queue,
                        describe(exc))

    async def confirm(self) -> None:
        """One round trip per held lease (each must still exist); extends `valid`. Raises
        LeaseLost when the broker does not answer within `fence_s` or a lease is gone."""
        if self._conn is None or self._conn.is_closed:
            raise LeaseLost("no connection to the broker")
        sent = time.monotonic()
        try:
            async with asyncio.timeout(self._fleet.fence_s):
                for queue, channel in list(self._held.items()):
                    await channel.declare_queue(queue, passive=True)
                if not self._held:
                    await self._ping()
        except TimeoutError:
            raise LeaseLost(f"the broker did not answer for {self._fleet.fence_s:g} s",
                            answered=False) from None
        except BROKER_ERRORS as exc:
            raise LeaseLost(describe(exc)) from None
        self._valid_until = sent + self._fleet.fence_s

    async def _ping(self) -> None:
        assert self._conn is not None
        channel = await self._conn.channel()
        await channel.close()

    async def aclose(self) -> None:
        self._valid_until = 0.0
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed:
            with contextlib.suppress(*BROKER_ERRORS, TimeoutError):
                async with asyncio.timeout(1.0):  # (a node that is gone does not answer)
                    await conn.close()
