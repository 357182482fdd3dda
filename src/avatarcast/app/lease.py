"""Who runs a channel, decided by RabbitMQ: a channel's lease is an exclusive queue
(`<speak queue>.owner`). The broker lets one connection at a time declare it, and deletes it
when that connection dies, whether it closed (a process killed: at once) or went silent (a
network partition, a frozen machine: after the heartbeat timeout).

The leases live on a plain connection (not a robust one: a reconnect must never take a lease
back on its own). The holder confirms its leases every `fence_s / 3` with a round trip to the
broker; `valid()` is False once no round trip has succeeded for `fence_s`, which is shorter
than the heartbeat timeout, so a holder that is cut off stops publishing before the broker can
give its channels to another worker. The pacer checks `valid()` before every frame.
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
from ..settings import BrokerSettings, FleetSettings

log = logging.getLogger(__name__)


def lease_queue(channel_broker: BrokerSettings) -> str:
    """The lease of the channel whose (derived) broker settings these are."""
    return f"{channel_broker.speak_queue}.owner"


class LeaseLost(RuntimeError):
    """The connection that held the leases is gone."""


class Leases:
    """Owned by the event loop; `valid` may be read from any thread."""

    def __init__(self, broker: BrokerSettings, fleet: FleetSettings) -> None:
        self._broker = broker
        self._fleet = fleet
        self._conn: AbstractConnection | None = None
        self._held: dict[str, AbstractChannel] = {}  # lease queue -> the AMQP channel of it
        self._valid_until = 0.0
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed

    def valid(self) -> bool:
        return time.monotonic() < self._valid_until

    async def connect(self) -> None:
        """Raises a broker error when the broker cannot be reached."""
        self._conn = await connect_broker(
            self._broker, name=f"avatarcast-worker {self.worker}",
            heartbeat_s=self._fleet.heartbeat_s, connect_timeout_s=max(2.0, self._fleet.fence_s),
        )
        self._held.clear()
        self._valid_until = time.monotonic() + self._fleet.fence_s

    async def take(self, queue: str) -> bool:
        """Try to take a lease: True once held, False when another connection holds it."""
        if self._conn is None or self._conn.is_closed:
            raise LeaseLost("no connection to the broker")
        channel = await self._conn.channel()
        try:
            await channel.declare_queue(queue, exclusive=True, auto_delete=False)
        except ChannelLockedResource:
            return False  # (the broker closed that AMQP channel)
        except BROKER_ERRORS as exc:
            raise LeaseLost(describe(exc)) from None
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
            raise LeaseLost(f"the broker did not answer for {self._fleet.fence_s:g} s") from None
        except BROKER_ERRORS as exc:
            raise LeaseLost(describe(exc)) from None
        self._valid_until = sent + self._fleet.fence_s

    async def _ping(self) -> None:
        assert self._conn is not None
        channel = await self._conn.channel()
        await channel.close()

    async def aclose(self) -> None:
        self._valid_until = 0.0
        self._held.clear()
        if self._conn is not None and not self._conn.is_closed:
            with contextlib.suppress(*BROKER_ERRORS):
                await self._conn.close()
        self._conn = None
