"""A listener on the daemon's lifecycle events exchange, as a publisher would run one: a queue
of its own bound to every routing key, read on a thread while the test goes on."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import aio_pika

from .daemon import AMQP


class EventTap:
    def __init__(self, exchange: str, url: str = AMQP) -> None:
        self.exchange = exchange
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.keys: list[str] = []  # the routing key of each event
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> EventTap:
        self._thread.start()
        if not self._ready.wait(15):
            raise AssertionError(f"could not listen on {self.exchange}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        conn = await aio_pika.connect(self.url)
        async with conn:
            ch = await conn.channel()
            ex = await ch.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC,
                                           durable=True)
            q = await ch.declare_queue("", exclusive=True, auto_delete=True)
            await q.bind(ex, routing_key="#")

            async def got(raw: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with raw.process():
                    self.keys.append(raw.routing_key or "")
                    self.events.append(json.loads(raw.body))

            await q.consume(got)
            self._ready.set()
            await self._stop.wait()

    def of(self, msg_id: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("id") == msg_id]

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float,
                 what: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = list(self.events)
            if pred(seen):
                return seen
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; events: {self.events}")
