"""RabbitMQ in: a robust connection, durable queues, speak and control on separate channels
(so a backlog of unacked speech never holds a control message back), and the dead-letter
queue with the reason in a header."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelInvalidStateError

from ..infra.redact import global_redactor
from ..settings import BrokerSettings
from . import standing
from .bounded import BoundedChannel, body_size
from .connection import connect_robust
from .dedupe import HandledIds
from .failures import BROKER_ERRORS, CLOSE_TIMEOUT_S, close_robust, describe, is_refusal
from .ledger import Ledger
from .messages import (
    MAX_BODY_BYTES,
    ControlMessage,
    MessageError,
    Utterable,
    parse_message,
)
from .topology import REASON_HEADER, SOURCE_HEADER, declare, declare_queue, persistent

log = logging.getLogger(__name__)

# Longest a purge of the speak queue (a broker round trip, normally) holds settlements back.
PURGE_WAIT_S = 5.0


def _channel(raw: AbstractIncomingMessage) -> object | None:
    try:
        return raw.channel
    except ChannelInvalidStateError:
        return None


@dataclass
class Delivery:
    """A speak message and the AMQP delivery that brought it. The delivery can only be acked on
    the channel that delivered it: once that channel is gone (a reconnect), RabbitMQ redelivers
    the message on the new one, and the redelivery replaces this one."""

    message: Utterable
    raw: AbstractIncomingMessage

    def replaced_by(self, other: Delivery) -> bool:
        """Is `other` this message delivered again on a newer channel?"""
        mine = _channel(self.raw)
        return mine is None or mine is not _channel(other.raw)


class Handler(Protocol):
    """Where the consumer delivers (the scheduler)."""

    async def on_speak(self, d: Delivery) -> None: ...

    async def on_control(self, msg: ControlMessage) -> str | None:
        """Act on a control message; the reason to dead-letter it, or None when it was done."""


class Consumer:
    """Owned by the event loop. Built before what it delivers to (which settles through it:
    the `Broker` of playout/settle.py), and given that at `start`."""

    def __init__(
        self, settings: BrokerSettings, on_rejected: Callable[[str, str], None] | None = None,
        handled: HandledIds | None = None,
    ) -> None:
        self._s = settings
        # Ids handled by this channel's earlier owners, read from the fleet's ledger at start.
        self._handled = handled
        self._ledger = Ledger(settings)
        self._handler: Handler | None = None
        # Cleared while the speak queue is purged: a settlement then would free a place in
        # the prefetch, which RabbitMQ fills from the very messages being purged.
        self._not_purging = asyncio.Event()
        self._not_purging.set()
        # A message dead-lettered before it was understood (its id, the reason).
        self._on_rejected = on_rejected
        self._conn: AbstractRobustConnection | None = None
        self._speak_ch: AbstractChannel | None = None
        self._control_ch: AbstractChannel | None = None
        self._speak_q: AbstractQueue | None = None
        self._control_q: AbstractQueue | None = None
        self._tags: list[tuple[AbstractQueue, str]] = []
        self._standing = standing.Standing()
        self.dead_lettered = 0

    @property
    def connected(self) -> bool:
        """Connected and consuming: the queues exist (a publisher that saw this may publish;
        before the queues are declared, a message to the default exchange is dropped)."""
        conn = self._conn
        # (A robust connection is not "closed" while it reconnects: ask whether it is up.)
        return (conn is not None and not conn.is_closed and conn.connected.is_set()
                and bool(self._tags))

    async def start(self, handler: Handler) -> None:
        """Connect, retrying until the broker answers (the stream stays on air meanwhile), and
        deliver to `handler`."""
        self._handler = handler
        while True:
            try:
                self._conn = await connect_robust(
                    self._s, name="avatarcast", heartbeat_s=self._s.heartbeat_s,
                    reconnect_interval_s=self._s.reconnect_interval_s,
                )
                break
            except BROKER_ERRORS as exc:
                what = describe(exc) if is_refusal(exc) else f"broker unreachable ({describe(exc)})"
                log.warning("%s; retrying in %.1f s", what, self._s.reconnect_interval_s)
                await asyncio.sleep(self._s.reconnect_interval_s)
        self._conn.reconnect_callbacks.add(self._reconnected)
        # A body over the limit is never held whole, on any channel of it (bounded.py).
        self._conn.CHANNEL_CLASS = BoundedChannel  # type: ignore[attr-defined]
        self._speak_ch = await self._conn.channel(publisher_confirms=True)
        await self._speak_ch.set_qos(prefetch_count=self._s.prefetch)
        queues = await declare(self._speak_ch, self._s)
        self._speak_q = queues.speak
        self._control_ch = await self._conn.channel()
        await self._control_ch.set_qos(prefetch_count=16)
        self._control_q = await declare_queue(self._control_ch, self._s.control_queue, self._s)
        # As the channel was left (paused, a voice set), before the first text is taken.
        standing_q = await standing.declare(self._speak_ch, self._s)
        self._standing = await standing.read(standing_q, self._speak_ch, self._s)
        for msg in self._standing.controls():
            log.info("standing control from before: %s", msg.command)
            if (reason := await handler.on_control(msg)) is not None:
                log.warning("the standing control %s cannot be applied here: %s", msg.command,
                            reason)
        await self._read_ledger()
        self._tags = [
            (self._control_q, await self._control_q.consume(self._got_control)),
            (self._speak_q, await self._speak_q.consume(self._got_speak)),
        ]
        log.info("consuming %s and %s", self._s.speak_queue, self._s.control_queue)

    async def _read_ledger(self) -> None:
        """Before the first delivery: what earlier owners of the channel handled."""
        assert self._conn is not None
        ids = await self._ledger.open(self._conn)
        if self._handled is not None and ids:
            new = self._handled.absorb(ids)
            if new:
                log.info("%d id(s) handled by an earlier owner of this channel, from the "
                         "ledger: their redeliveries are acked, not aired", new)

    async def record_handled(self, msg_id: str) -> bool:
        """Into the fleet's ledger, before the ack (False when it could not be)."""
        return await self._ledger.append(msg_id)

    @property
    def ledger_enabled(self) -> bool:
        return self._ledger.enabled

    def _reconnected(self, *_: object) -> None:
        log.warning("broker connection re-established; unacked messages are redelivered")

    async def stop_consuming(self) -> None:
        """Cancel the consumers. While the connection is down, they are only forgotten (the
        broker ended them with the connection): a robust connection would otherwise restore
        them when it is back, and a channel that went off air (a fleet worker woken after its
        lease went elsewhere) would take messages from their new owner."""
        tags, self._tags = self._tags, []
        up = self._conn is not None and self._conn.connected.is_set()
        # All at once, each with its own deadline: aio-pika's robust queue forgets a consumer
        # before it asks the broker, so every one is forgotten even if the broker (or the
        # connection, already dead under a woken worker) never answers.
        results = await asyncio.gather(
            *(self._cancel(queue, tag, up) for queue, tag in tags), return_exceptions=True)
        for (queue, _), result in zip(tags, results, strict=True):
            if isinstance(result, TimeoutError):
                log.warning("the broker did not answer within %g s while cancelling the "
                            "consumer on %s; it ends with the connection", CLOSE_TIMEOUT_S,
                            queue.name)
            elif isinstance(result, BaseException) and up:
                log.warning("cancel consumer on %s: %s", queue.name, result)

    @staticmethod
    async def _cancel(queue: AbstractQueue, tag: str, up: bool) -> None:
        async with asyncio.timeout(CLOSE_TIMEOUT_S if up else 0.1):
            await queue.cancel(tag, nowait=not up)

    async def _got_speak(self, raw: AbstractIncomingMessage) -> None:
        msg = await self._decode(raw, speak=True)
        if msg is not None and not isinstance(msg, ControlMessage):
            assert self._handler is not None  # consuming starts once it is given
            await self._handler.on_speak(Delivery(msg, raw))

    async def _got_control(self, raw: AbstractIncomingMessage) -> None:
        msg = await self._decode(raw, speak=False)
        if isinstance(msg, ControlMessage):
            # (Each delivery runs in its own task: a slow `set` holds no skip back.)
            assert self._handler is not None
            if (reason := await self._handler.on_control(msg)) is not None:
                await self._reject(raw, reason)
                return
            if self._standing.apply(msg) and self._speak_ch is not None:
                await standing.write(self._speak_ch, self._s, self._standing)
            await self.ack(raw)

    async def _decode(
        self, raw: AbstractIncomingMessage, *, speak: bool
    ) -> Utterable | ControlMessage | None:
        """The message, or None once it has been dead-lettered with the reason."""
        if (size := body_size(raw.headers, raw.body)) > MAX_BODY_BYTES:
            await self._reject(raw, f"body too large: {size} bytes, over the "
                                    f"{MAX_BODY_BYTES // 1024} KiB limit")
            return None
        try:
            msg = parse_message(raw.body, raw.message_id)
        except MessageError as exc:
            await self._reject(raw, str(exc))
            return None
        except Exception as exc:  # a bug in decoding must not leave the message unsettled
            log.exception("decoding message %s failed", raw.message_id or "(no id)")
            await self._reject(raw, f"could not decode: {type(exc).__name__}")
            return None
        if isinstance(msg, ControlMessage) == speak:
            expected = "speak" if speak else "control"
            await self._reject(raw, f"{msg.type} message sent to the {expected} queue")
            return None
        return msg

    async def _reject(self, raw: AbstractIncomingMessage, reason: str) -> None:
        await self.dead_letter(raw, reason)
        if self._on_rejected is not None and raw.message_id:
            self._on_rejected(raw.message_id, reason)

    async def ack(self, raw: AbstractIncomingMessage) -> None:
        await self._not_purging.wait()
        if _channel(raw) is None:
            # RabbitMQ redelivers it on the new channel, where the id store acks it.
            log.info("%s was delivered on a channel that is gone; its redelivery is acked "
                     "as handled", raw.message_id)
            return
        try:
            await raw.ack()
        except BROKER_ERRORS as exc:
            log.warning("ack of %s failed (%s); it will be redelivered", raw.message_id,
                        describe(exc))

    async def requeue(self, raw: AbstractIncomingMessage) -> None:
        await self._not_purging.wait()
        if _channel(raw) is None:
            return  # the broker requeued it when the channel closed
        try:
            await raw.nack(requeue=True)
        except BROKER_ERRORS as exc:
            log.warning("requeue of %s failed (%s); the broker requeues it", raw.message_id,
                        describe(exc))

    async def dead_letter(self, raw: AbstractIncomingMessage, reason: str) -> bool:
        """Copy the message to the dead-letter queue with the reason, then ack the original.
        If the copy cannot be confirmed, reject instead: the queue's DLX still catches it.
        True when the copy with the reason was confirmed."""
        reason = global_redactor()(reason)  # reasons quote providers, which may echo a key
        log.error("dead-lettering message %s: %s", raw.message_id or "(no id)", reason)
        await self._not_purging.wait()
        headers = dict(raw.headers or {})
        headers.update({
            REASON_HEADER: reason[:1000],
            SOURCE_HEADER: raw.routing_key or "",
            "x-avatarcast-failed-at": int(time.time()),
        })
        try:
            assert self._speak_ch is not None
            await self._speak_ch.default_exchange.publish(
                persistent(
                    raw.body, headers=headers, message_id=raw.message_id,
                    correlation_id=raw.correlation_id,
                ),
                routing_key=self._s.dead_letter_queue,
            )
        except (*BROKER_ERRORS, AssertionError) as exc:
            log.warning("dead-letter copy failed (%s); rejecting instead", describe(exc))
            try:
                await raw.reject(requeue=False)
            except BROKER_ERRORS as exc2:
                log.warning("reject failed too (%s); it will be redelivered", describe(exc2))
            return False
        self.dead_lettered += 1
        await self.ack(raw)
        return True

    async def queue_depth(self) -> int | None:
        """Messages ready in the speak queue (not yet delivered to anyone), or None when the
        broker cannot be asked now."""
        if self._speak_ch is None or not self.connected:
            return None
        try:
            # The AMQP channel itself: aio-pika's declare_queue would answer from its cache of
            # the queue declared at start, not ask the broker.
            channel = await self._speak_ch.get_underlay_channel()
            ok = await channel.queue_declare(self._s.speak_queue, passive=True)
        except BROKER_ERRORS:
            return None
        return int(ok.message_count or 0)

    async def purge_speak(self) -> int:
        """Drop every speak message still waiting in the queue (not yet delivered to us).
        Settlements asked for meanwhile go out once it is done, or given up after
        PURGE_WAIT_S."""
        if self._speak_q is None:
            return 0
        self._not_purging.clear()
        try:
            async with asyncio.timeout(PURGE_WAIT_S):
                result = await self._speak_q.purge()
        except TimeoutError:
            log.warning("the broker did not purge %s within %g s; what it still holds airs",
                        self._s.speak_queue, PURGE_WAIT_S)
            return 0
        except BROKER_ERRORS as exc:
            log.warning("purge of %s failed: %s", self._s.speak_queue, exc)
            return 0
        finally:
            self._not_purging.set()
        return int(getattr(result, "message_count", 0) or 0)

    async def aclose(self) -> None:
        await self.stop_consuming()
        await close_robust(self._conn, "consumer")
        self._conn = None
