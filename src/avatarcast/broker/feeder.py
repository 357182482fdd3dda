"""A long-lived publisher for the processes that feed a channel's speak queue beside its
operators (`avatarcast chat`, `avatarcast show`): one robust connection, confirms, the queues
declared as the daemon declares them; a publish retried until the broker confirmed it; and
how many texts wait for the air (those ready in the queue, asked of the broker each time, and
those the daemon has taken and not finished, from its lifecycle events: airwatch.py), so that
a feeder holds back while operators' texts and earlier ones wait."""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from ..settings import BrokerSettings
from .airwatch import AirWatch
from .connection import connect_robust
from .failures import BROKER_ERRORS, close_robust, describe
from .messages import Utterable, to_wire
from .topology import declare, persistent

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0


class Feeder:
    def __init__(self, settings: BrokerSettings, name: str) -> None:
        self._s = settings
        self._name = name
        self._conn: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self.watch = AirWatch(settings, f"{name}-watch")
        self._unreachable = False

    async def run(self) -> None:
        """The watch on what the daemon holds: a task for as long as the feeder is used."""
        await self.watch.run()

    async def publish(self, msg: Utterable) -> None:
        """To the speak queue, confirmed by the broker, however long it is away (retried)."""
        while True:
            try:
                channel = await self._open()
                async with asyncio.timeout(TIMEOUT_S):
                    await channel.default_exchange.publish(
                        persistent(to_wire(msg), message_id=msg.id),
                        routing_key=self._s.speak_queue, mandatory=True)
                return
            except BROKER_ERRORS as exc:  # (TimeoutError is an OSError)
                log.warning("%s: could not publish %s (%s); retrying", self._name, msg.id,
                            describe(exc))
                await asyncio.sleep(self._s.reconnect_interval_s)

    async def queued(self) -> int | None:
        """Texts waiting for the air: ready in the speak queue (asked of the broker each
        time: aio-pika answers a passive declare of a queue it knows from its cache, with the
        count of then) and held by the daemon; None when the broker cannot say, or while the
        watch on the daemon is not listening yet."""
        try:
            if not self.watch.ready.is_set():
                return None
            channel = await self._open()
            async with asyncio.timeout(TIMEOUT_S):
                underlay = await channel.get_underlay_channel()
                ok = await underlay.queue_declare(self._s.speak_queue, passive=True)
        except BROKER_ERRORS as exc:
            if not self._unreachable:  # (once an outage, not once a tick)
                log.warning("%s: the broker is unreachable (%s)", self._name, describe(exc))
            self._unreachable = True
            return None
        if self._unreachable:
            log.info("%s: the broker is back", self._name)
            self._unreachable = False
        return int(ok.message_count or 0) + self.watch.held()

    async def _open(self) -> AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            async with asyncio.timeout(TIMEOUT_S * 3):
                if self._conn is None:
                    self._conn = await connect_robust(self._s, name=self._name)
                self._channel = await self._conn.channel(publisher_confirms=True)
                await declare(self._channel, self._s)
        return self._channel

    async def aclose(self) -> None:
        await self.watch.aclose()
        await close_robust(self._conn, self._name)
        self._conn = self._channel = None
