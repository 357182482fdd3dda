"""Publishing for the CLI (`say`, `control`): declared queues, persistent messages, confirms,
and (for `say --wait`) following the message's lifecycle events until it aired or failed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ..playout.lifecycle import TERMINAL
from ..settings import BrokerSettings
from .connection import connect_robust
from .events import declare_events
from .failures import BROKER_ERRORS, describe
from .messages import ControlMessage, Utterable, to_wire
from .topology import declare, persistent


class PublishError(Exception):
    pass


@dataclass
class Sent:
    consumers: int  # daemons consuming the queue it went to, when it was sent
    last: dict[str, Any] | None = None  # the terminal event followed to, if any


async def publish(
    settings: BrokerSettings, msg: Utterable | ControlMessage, *,
    follow_s: float | None = None, progress: Callable[[dict[str, Any]], None] | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> Sent:
    """Publish `msg` and wait for the broker's confirm. With `follow_s`, also follow a speak
    message's lifecycle events (subscribed before it is sent, so none is missed), passing each
    to `progress`, until a terminal one or until follow_s passed (`last` is then None).
    `on_sent` hears, once the broker confirmed, how many daemons consume the queue."""
    conn: AbstractRobustConnection | None = None
    try:
        conn = await connect_robust(settings, name=None)  # (its first attempt fails fast)
        channel = await conn.channel(publisher_confirms=True)
        queues = await declare(channel, settings)
        queue = queues.speak if not isinstance(msg, ControlMessage) else queues.control
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        if follow_s is not None and not isinstance(msg, ControlMessage):
            await _subscribe(channel, settings, msg.id, events)
        extra = {"message_id": msg.id} if not isinstance(msg, ControlMessage) else {}
        await channel.default_exchange.publish(
            persistent(to_wire(msg), **extra),
            routing_key=queue.name,
            mandatory=True,
        )
        result = queue.declaration_result
        sent = Sent(consumers=int(result.consumer_count or 0) if result is not None else 0)
        if on_sent is not None:
            on_sent(sent.consumers)
        if follow_s is not None and not isinstance(msg, ControlMessage):
            async for event in _until_terminal(events, follow_s):
                if progress is not None:
                    progress(event)
                sent.last = event if event.get("event") in TERMINAL else None
        return sent
    except BROKER_ERRORS as exc:
        raise PublishError(describe(exc)) from None
    finally:
        if conn is not None:
            await conn.close()


async def _subscribe(channel: aio_pika.abc.AbstractChannel, settings: BrokerSettings,
                     msg_id: str, into: asyncio.Queue[dict[str, Any]]) -> None:
    exchange = await declare_events(channel, settings.events_exchange)
    mine = await channel.declare_queue("", exclusive=True, auto_delete=True)
    await mine.bind(exchange, routing_key="#")

    async def got(raw: AbstractIncomingMessage) -> None:
        async with raw.process(ignore_processed=True):
            if raw.message_id != msg_id:
                return
            with contextlib.suppress(ValueError):
                event = json.loads(raw.body)
                if isinstance(event, dict):
                    into.put_nowait(event)

    await mine.consume(got)


async def _until_terminal(events: asyncio.Queue[dict[str, Any]],
                          limit_s: float) -> AsyncIterator[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while (remaining := deadline - loop.time()) > 0:
        try:
            event = await asyncio.wait_for(events.get(), remaining)
        except TimeoutError:
            return
        yield event
        if event.get("event") in TERMINAL:
            return
