"""What a channel's daemon holds and airs, as a feeder sees it from the lifecycle events: the
texts it has taken from the speak queue and not yet finished (RabbitMQ's count of ready
messages leaves them out: the daemon takes up to its prefetch at once and acks each once it
aired), what is on air, and when the last one ended. Read by `avatarcast chat` and
`avatarcast show` to hold back while the channel is busy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ..playout.lifecycle import TERMINAL
from ..settings import BrokerSettings
from .connection import connect_robust
from .events import declare_events
from .failures import BROKER_ERRORS, close_robust, describe

log = logging.getLogger(__name__)

# A text whose end was never heard (its daemon killed, an event lost) stops counting after
# this long: a feeder is never held for ever. Longer than any text takes to air.
FORGET_S = 1800.0
ENDS = (*TERMINAL, "requeued")  # requeued: back among the queue's ready messages


class AirWatch:
    """Owned by the event loop; `run` is a task of the feeder's."""

    def __init__(self, settings: BrokerSettings, name: str) -> None:
        self._s = settings
        self._name = name
        self._conn: AbstractRobustConnection | None = None
        self._taken: dict[str, float] = {}  # id -> when the daemon took it
        self._on_air: dict[str, float] = {}
        self.last_end = time.time()  # (at start: as if something just ended)
        self.ready = asyncio.Event()  # set once it listens

    def held(self) -> int:
        """Texts the daemon has taken and not finished, the one on air among them."""
        self._forget()
        return len(self._taken)

    def airing(self) -> bool:
        self._forget()
        return bool(self._on_air)

    def heard(self, event: dict[str, object]) -> None:
        name, msg_id, now = event.get("event"), str(event.get("id")), time.time()
        if name == "accepted":
            self._taken[msg_id] = now
        elif name == "on_air":
            self._on_air[msg_id] = now
            self._taken.setdefault(msg_id, now)
        elif name in ENDS:
            self._taken.pop(msg_id, None)
            if self._on_air.pop(msg_id, None) is not None or name != "requeued":
                self.last_end = now

    def _forget(self) -> None:
        now = time.time()
        for held in (self._taken, self._on_air):
            for k in [k for k, t in held.items() if now - t > FORGET_S]:
                del held[k]

    async def run(self) -> None:
        while True:
            try:
                self._conn = await connect_robust(self._s, name=self._name)
                channel = await self._conn.channel()
                exchange = await declare_events(channel, self._s.events_exchange)
                queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
                await queue.bind(exchange, routing_key="#")
                await queue.consume(self._got, no_ack=True)
                self.ready.set()
                await asyncio.Event().wait()  # the robust connection restores all this
            except BROKER_ERRORS as exc:
                log.warning("%s: cannot watch the lifecycle events (%s)", self._name,
                            describe(exc))
                await close_robust(self._conn, self._name)
                self._conn = None
                await asyncio.sleep(self._s.reconnect_interval_s)

    async def _got(self, raw: AbstractIncomingMessage) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            event = json.loads(raw.body)
            if isinstance(event, dict):
                self.heard(event)

    async def aclose(self) -> None:
        await close_robust(self._conn, self._name)
        self._conn = None
