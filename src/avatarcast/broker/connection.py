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

With several nodes (a cluster: nodes.py), a plain connection tries them in turn and raises
the last node's error when none answers; a robust one moves to the next node whenever its
connection is lost or an attempt fails, so a node that dies is left at once.

A failure is raised as aio-pika raised it, one of failures.BROKER_ERRORS (a connect timeout is a
TimeoutError); failures.describe says it in one line and is_refusal tells a refused login from
an unreachable broker. The URL leaves its SecretStr only into aio-pika, whose errors do not
carry it and whose own log lines mask its password.

The first attempt of a robust connection raises like a plain one (aio-pika's `fail_fast`, on
by default): the caller decides whether and how to retry. Once it was up, aio-pika reconnects
it every `reconnect_interval_s` seconds and restores its channels and consumers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aio_pika.connection import make_url
from aio_pika.robust_connection import RobustConnection
from aiormq.abc import FieldTable
from yarl import URL

from ..settings import BrokerSettings
from .failures import BROKER_ERRORS, is_refusal
from .nodes import Rotation, host_of, node_urls

log = logging.getLogger(__name__)

# (None for any option below means aio-pika's default, or what the URL's query says.)

CONNECT_TIMEOUT_S = 10.0


async def connect(
    settings: BrokerSettings, *, name: str | None, heartbeat_s: int | None = None,
    connect_timeout_s: float | None = None, rotation: Rotation | None = None,
) -> AbstractConnection:
    """A plain connection: once lost it stays lost, and the caller connects again. Each node
    is tried once, from `rotation`'s current one (kept by a caller that connects again, so
    that it starts from the node that answered last)."""
    nodes = rotation or Rotation(node_urls(settings))
    for left in range(len(nodes), 0, -1):
        try:
            return await aio_pika.connect(
                nodes.current, heartbeat=heartbeat_s, timeout=connect_timeout_s,
                client_properties=_properties(name),
            )
        except (*BROKER_ERRORS, TimeoutError) as exc:
            if left == 1 or is_refusal(exc):
                raise
            log.info("broker node %s: no connection (%s); trying %s", host_of(nodes.current),
                     type(exc).__name__, host_of(nodes.advance()))
    raise AssertionError("unreachable")


async def connect_robust(
    settings: BrokerSettings, *, name: str | None, heartbeat_s: int | None = None,
    reconnect_interval_s: float | None = None, connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> AbstractRobustConnection:
    """A connection that aio-pika re-establishes by itself once it was up, to the next node
    when there are several. Its first attempt tries each node once, as `connect`. Every
    attempt, the reconnections' too, ends after `connect_timeout_s`: a node that accepts the
    TCP connection and then says nothing (hung) is left for the next."""
    # (aio-pika carries its options in the URL's query: each node's URL gets them)
    options: dict[str, Any] = {"heartbeat": heartbeat_s,
                               "reconnect_interval": reconnect_interval_s}
    nodes = Rotation([str(make_url(u, **options)) for u in node_urls(settings)])
    for left in range(len(nodes), 0, -1):
        conn = NodesConnection(URL(nodes.current), nodes=nodes,
                               client_properties=_properties(name), **options)
        try:
            await conn.connect(timeout=connect_timeout_s)
            return conn
        except (*BROKER_ERRORS, TimeoutError) as exc:
            await conn.close()
            if left == 1 or is_refusal(exc):
                raise
            log.info("broker node %s: no connection (%s); trying %s", host_of(nodes.current),
                     type(exc).__name__, host_of(nodes.advance()))
    raise AssertionError("unreachable")


_ATTEMPT = getattr(RobustConnection, "_RobustConnection__connect_transport")  # noqa: B009


class NodesConnection(RobustConnection):
    """aio-pika's robust connection, reconnecting to the next node of its rotation rather
    than always to the same one. aio-pika connects to `self.url`; it is read from the
    rotation, which moves on when a connection is lost and when an attempt fails."""

    def __init__(self, url: URL, *, nodes: Rotation, **kwargs: object) -> None:
        self._nodes = nodes
        self._moved = False  # this attempt already moved on (its connection was lost)
        super().__init__(url, **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> URL:
        return URL(self._nodes.current)

    @url.setter
    def url(self, value: URL) -> None:
        # (set at construction, and by update_secret with a new password: keep that one)
        if value.password != URL(self._nodes.current).password:
            self._nodes.urls = [str(URL(u).with_password(value.password))
                                for u in self._nodes.urls]

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # (also called for an attempt that failed: that one moves on where it failed)
        if self.connected.is_set() and not self._close_called and len(self._nodes) > 1:
            lost = host_of(self._nodes.current)
            self._moved = True
            log.warning("broker node %s: connection lost; reconnecting to %s", lost,
                        host_of(self._nodes.advance()))
        await super()._on_connection_close(closing)

    async def _RobustConnection__connect_transport(self) -> None:
        # (RobustConnection's own attempt, reached by its name-mangled name: the one place
        # where an attempt fails without a callback, so the one place to move on from.)
        self._moved = False
        try:
            await _ATTEMPT(self)
        except Exception:
            # (once: an attempt whose connection was made, then lost while its channels were
            # restored, moved on already)
            if len(self._nodes) > 1 and self.connection_attempt and not self._moved:
                self._nodes.advance()
            raise


def _properties(name: str | None) -> FieldTable | None:
    return {"connection_name": name} if name is not None else None
