"""Lifecycle events out to RabbitMQ: a topic exchange (broker.events_exchange), routing key =
the event's name, a JSON body (lifecycle.Event.as_dict), the message id as the AMQP message id.

Events are news, not work: they are sent on a connection of their own, transient, without
confirms, from a bounded buffer. While the broker is away the newest EVENT_BUFFER wait and
older ones are dropped (and counted); nothing in the stream ever waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from ..playout.lifecycle import Event
from ..settings import BrokerSettings
from .connection import connect_robust
from .failures import BROKER_ERRORS, close_robust, describe

log = logging.getLogger(__name__)

EVENT_BUFFER = 1000


async def declare_events(channel: aio_pika.abc.AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


class EventPublisher:
    """Owned by the event loop: `send` is called by the lifecycle, `run` is a daemon task."""

    def __init__(self, settings: BrokerSettings, channel: str | None = None) -> None:
        self._s = settings
        self._channel = channel  # in every event's body, when the worker runs channels
        self._buffer: deque[Event] = deque(maxlen=EVENT_BUFFER)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._conn: AbstractRobustConnection | None = None
        self.sent = 0
        self.dropped = 0

    def send(self, event: Event) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(event)
        self._drained.clear()
        self._wake.set()

    async def run(self) -> None:
        exchange = await self._connect()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                event = self._buffer[0]
                fields = event.as_dict()
                if self._channel is not None:
                    fields["channel"] = self._channel
                body = json.dumps(fields).encode()
                try:
                    await exchange.publish(
                        aio_pika.Message(body, content_type="application/json",
                                         message_id=event.id, timestamp=int(event.at)),
                        routing_key=event.name,
                        # Nobody listening is normal: no return (which aiormq logs as an
                        # error) for an event no queue is bound to take.
                        mandatory=False,
                    )
                except BROKER_ERRORS as exc:
                    # The robust connection comes back by itself; try again then.
                    log.warning("lifecycle events held (%s); %d waiting", describe(exc),
                                len(self._buffer))
                    await asyncio.sleep(self._s.reconnect_interval_s)
                    continue
                self._buffer.popleft()
                self.sent += 1
            self._drained.set()

    async def _connect(self) -> AbstractExchange:
        while True:
            try:
                self._conn = await connect_robust(
                    self._s, name="avatarcast-events", heartbeat_s=self._s.heartbeat_s,
                    reconnect_interval_s=self._s.reconnect_interval_s,
                )
                channel = await self._conn.channel(publisher_confirms=False)
                return await declare_events(channel, self._s.events_exchange)
            except BROKER_ERRORS as exc:
                log.debug("events: broker unreachable (%s)", describe(exc))
                if self._conn is not None:
                    await self._conn.close()
                    self._conn = None
                await asyncio.sleep(self._s.reconnect_interval_s)

    async def flush(self, limit_s: float) -> None:
        """Shutdown: give the events still waiting (the last settlements) a moment to go."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                await self._drained.wait()

    async def aclose(self) -> None:
        await close_robust(self._conn, "events")
        self._conn = None
