"""How avatarcast connects to RabbitMQ: the one place that turns BrokerSettings into an AMQP
connection (the URL and its credentials, the name RabbitMQ's management UI shows, heartbeat,
connect timeout, robust or plain).

Its callers, and the names they show:

* the consumer ("avatarcast") and the lifecycle events ("avatarcast-events"): robust, with
  broker.heartbeat_s and broker.reconnect_interval_s;
* the fleet's leases ("avatarcast-worker HOST:PID"): plain (a reconnect must never take a lease
  back on its own), with fleet.heartbeat_s and a connect timeout;
* the CLI: `say`/`control` (robust, unnamed) and `doctor` (plain, unnamed, a timeout).

Nothing here keeps state or logs. A connection belongs to the event loop that awaited it (the
daemon's, the worker's, or the CLI's `asyncio.run`): its calls, callbacks and close run there.

A failure is raised as aio-pika raised it, one of failures.BROKER_ERRORS (a connect timeout is a
TimeoutError); failures.describe says it in one line and is_refusal tells a refused login from
an unreachable broker. The URL leaves its SecretStr only into aio-pika, whose errors do not
carry it and whose own log lines mask its password.

The first attempt of a robust connection raises like a plain one (aio-pika's `fail_fast`, on
by default): the caller decides whether and how to retry. Once it was up, aio-pika reconnects
it every `reconnect_interval_s` seconds and restores its channels and consumers.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aiormq.abc import FieldTable

from ..settings import BrokerSettings

# (None for any option below means aio-pika's default, or what the URL's query says.)


async def connect(
    settings: BrokerSettings, *, name: str | None, heartbeat_s: int | None = None,
    connect_timeout_s: float | None = None,
) -> AbstractConnection:
    """A plain connection: once lost it stays lost, and the caller connects again."""
    return await aio_pika.connect(
        settings.url.get_secret_value(), heartbeat=heartbeat_s, timeout=connect_timeout_s,
        client_properties=_properties(name),
    )


async def connect_robust(
    settings: BrokerSettings, *, name: str | None, heartbeat_s: int | None = None,
    reconnect_interval_s: float | None = None,
) -> AbstractRobustConnection:
    """A connection that aio-pika re-establishes by itself once it was up."""
    return await aio_pika.connect_robust(
        settings.url.get_secret_value(), heartbeat=heartbeat_s,
        reconnect_interval=reconnect_interval_s, client_properties=_properties(name),
    )


def _properties(name: str | None) -> FieldTable | None:
    return {"connection_name": name} if name is not None else None
