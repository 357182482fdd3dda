"""The fleet's ledger of handled ids: a RabbitMQ stream per channel (`<speak queue>.handled`)
that the owner appends each message's id to, with a publisher confirm, before it acks the
message; and that a starting owner reads before it consumes. A message whose ack was lost
(its owner died between airing and acking, or its node did) is redelivered to the next owner,
on whatever machine: that owner finds the id in the ledger and acks it without airing it
again. The local file of handled ids (dedupe.py) stays, as a cache that also covers a broker
without streams.

Reading is bounded: a reader attached at the stream's end sees the marker the owner then
appends, and its offset; a second reader reads the `dedupe_capacity` ids before it.
Retention is bounded by age and size (`ledger_max_age_h`, `ledger_max_mb`).

What is promised: an id the ledger confirmed is known to every later owner while the stream
keeps it (a quorum of the stream's replicas wrote it). Not promised: an id whose append the
broker did not confirm (the ack is then still tried: if it too fails, only this worker's
own file remembers it), nor anything after the broker loses committed data (a quorum of its
disks); see the README's Cluster. Owned by the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.abc import FieldTable

from ..settings import BrokerSettings
from .failures import BROKER_ERRORS, describe
from .topology import STREAMS_SINCE, broker_has, declare_probed, server_version

log = logging.getLogger(__name__)

SUFFIX = ".handled"
KIND_HEADER = "x-avatarcast-ledger"  # "handled" (the body is an id) or "marker"
READ_TIMEOUT_S = 30.0
MARKER_SLACK = 1_000  # offsets read beyond the window, for the markers among the ids
READ_ROUNDS = 3  # then the window holds what the stream kept (retention may have taken more)
APPEND_TIMEOUT_S = 5.0
PREFETCH = 1000
ACK_EVERY = PREFETCH // 4


def stream_name(settings: BrokerSettings) -> str:
    return settings.speak_queue + SUFFIX


def stream_args(settings: BrokerSettings) -> FieldTable:
    size = settings.ledger_max_mb * 1_000_000
    # (retention drops whole segments: several of them, or a small stream is never trimmed)
    return {"x-queue-type": "stream", "x-max-age": f"{settings.ledger_max_age_h}h",
            "x-max-length-bytes": size, "x-stream-max-segment-size-bytes": max(size // 8,
                                                                                100_000)}


class Ledger:
    def __init__(self, settings: BrokerSettings) -> None:
        self._s = settings
        self._name = stream_name(settings)
        self._channel: AbstractChannel | None = None
        self.enabled = False
        self.appended = 0
        self.failures = 0

    async def open(self, conn: AbstractRobustConnection) -> list[str]:
        """Declare the stream and return the ids it holds (the newest dedupe_capacity of them,
        oldest first). An empty list, with a line saying why, when there is no ledger to read:
        set off, a broker without streams, or one that does not answer in time (appends go on
        if the stream could be declared)."""
        if self._s.ledger == "off":
            return []
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                channel = await conn.channel(publisher_confirms=True)
                version = await server_version(channel)
                if not broker_has(version, STREAMS_SINCE):
                    log.warning("the broker (RabbitMQ %s) has no streams: handled ids are "
                                "kept on this machine only, and a message whose ack was lost "
                                "in a failover can air twice (RabbitMQ 3.9 or later has them)",
                                version or "?")
                    await channel.close()
                    return []
                await declare_probed(channel, self._name, stream_args(self._s))
                self._channel = channel
                self.enabled = True
                ids = await self._read(conn, channel)
        except (*BROKER_ERRORS, TimeoutError) as exc:
            log.error("the ledger %s could not be read (%s): handled ids come from this "
                      "machine's file only until the next start; ids are %s", self._name,
                      describe(exc), "still appended to it" if self.enabled
                      else "not recorded in it either")
            return []
        log.info("ledger %s: %d handled id(s) read", self._name, len(ids))
        return ids

    async def append(self, msg_id: str) -> bool:
        """Before the ack: the id is in the ledger once the broker confirms it. False (and a
        line) when it did not within APPEND_TIMEOUT_S."""
        if self._channel is None:
            return False
        try:
            async with asyncio.timeout(APPEND_TIMEOUT_S):
                await self._channel.default_exchange.publish(
                    _entry(msg_id.encode(), "handled"), routing_key=self._name)
        except (*BROKER_ERRORS, TimeoutError) as exc:
            self.failures += 1
            log.warning("%s was not confirmed into the ledger (%s): if its ack is lost too, "
                        "another worker may air it again", msg_id, describe(exc))
            return False
        self.appended += 1
        return True

    async def _read(self, conn: AbstractRobustConnection,
                    channel: AbstractChannel) -> list[str]:
        """The newest dedupe_capacity ids, up to a marker appended now."""
        marker = uuid.uuid4().hex
        # Its offset, seen by a reader attached before it was appended (at "next"): whatever
        # else is appended meanwhile, the marker is among what that reader gets.
        end, _ = await _scan(conn, self._name, "next", marker, channel)
        # Each start's marker takes an offset too: a little more is read, the newest kept;
        # more, when markers filled the slack (a channel that started very often).
        want, slack = self._s.dedupe_capacity, MARKER_SLACK
        for _ in range(READ_ROUNDS):
            start = max(0, end - want - slack)
            ids = (await _scan(conn, self._name, start, marker))[1]
            if len(ids) >= want or start == 0:
                break
            slack *= 8
        return ids[-want:]


def _entry(body: bytes, kind: str, message_id: str | None = None) -> aio_pika.Message:
    return aio_pika.Message(body, headers={KIND_HEADER: kind}, message_id=message_id,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


async def _scan(conn: AbstractRobustConnection, name: str, offset: int | str, marker: str,
                append_on: AbstractChannel | None = None) -> tuple[int, list[str]]:
    """Read the stream from `offset` up to the marker: (the marker's offset, the ids seen).
    With `append_on`, the marker is appended (on that channel) once the reader is attached."""
    ids: list[str] = []
    found: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    unacked = 0

    async def got(raw: AbstractIncomingMessage) -> None:
        nonlocal unacked
        headers: dict[str, Any] = dict(raw.headers or {})
        kind = headers.get(KIND_HEADER)
        if kind == "handled":
            ids.append(raw.body.decode("utf-8", "replace"))
        elif kind == "marker" and raw.message_id == marker and not found.done():
            at = headers.get("x-stream-offset")
            if isinstance(at, int):
                found.set_result(at)
            else:
                found.set_exception(ValueError("the stream gave no x-stream-offset"))
            return
        # Acks are the stream's credit: one for a batch of messages, never a round of
        # prefetch waiting on them.
        unacked += 1
        if unacked >= ACK_EVERY:
            unacked = 0
            await raw.ack(multiple=True)

    channel = await conn.channel()
    try:
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.declare_queue(name, passive=True)
        await queue.consume(got, arguments={"x-stream-offset": offset})
        if append_on is not None:
            await append_on.default_exchange.publish(_entry(b"", "marker", marker),
                                                     routing_key=name)
        return await found, ids
    finally:
        with contextlib.suppress(*BROKER_ERRORS, TimeoutError):
            async with asyncio.timeout(APPEND_TIMEOUT_S):
                await channel.close()
