"""The queues the daemon and the CLI both declare, with identical arguments: quorum queues
(replicated over a cluster's nodes) where the broker has them, classic ones otherwise
(`broker.queue_type`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue
from aiormq.abc import FieldTable
from aiormq.exceptions import ChannelPreconditionFailed

from ..settings import BrokerSettings

log = logging.getLogger(__name__)

REASON_HEADER = "x-avatarcast-reason"
SOURCE_HEADER = "x-avatarcast-source-queue"


@dataclass
class Queues:
    speak: AbstractQueue
    control: AbstractQueue
    dead: AbstractQueue


def _dlx_args(settings: BrokerSettings) -> FieldTable:
    # Anything RabbitMQ itself rejects lands in the dead-letter queue too.
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": settings.dead_letter_queue,
    }


def dead_letter_args(settings: BrokerSettings) -> FieldTable:
    """The dead-letter queue is bounded: past either bound its oldest messages are dropped."""
    return {
        "x-max-length": settings.dead_letter_max_messages,
        "x-max-length-bytes": settings.dead_letter_max_mb * 1_000_000,
        "x-overflow": "drop-head",
    }


def quorum_args(settings: BrokerSettings, *, dead_letters: bool) -> FieldTable:
    """A quorum queue, replicated over the cluster; one that dead-letters does so past
    delivery_limit too. Its dead-lettering stays at-most-once, RabbitMQ's default: the
    daemon's own dead-letter copies are confirmed before their ack (consumer.dead_letter), and
    the at-least-once strategy is not safe to rely on here (on RabbitMQ 3.10.8 a queue with it
    crashes at declaration after `rabbitmqctl stop_app; start_app`, rabbit_fifo_dlx_sup noproc;
    rabbitmq-server#16652 reports such queues stranded by membership churn)."""
    args: FieldTable = {"x-queue-type": "quorum"}
    if dead_letters:
        args["x-delivery-limit"] = settings.delivery_limit
    return args


QUORUM_QUEUES_SINCE = (3, 8)
STREAMS_SINCE = (3, 9)


def broker_has(server_version: str, since: tuple[int, int]) -> bool:
    """Is the broker (its announced version, "3.10.8") at least `since`? False when unknown."""
    try:
        major, minor = (int(p) for p in server_version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= since


async def server_version(channel: AbstractChannel) -> str:
    """The broker's version as it announced it ("3.10.8"; "" when it did not)."""
    props = (await channel.get_underlay_channel()).connection.server_properties
    version = props.get("version", "")
    return version.decode() if isinstance(version, bytes) else str(version)


async def queue_type(channel: AbstractChannel, settings: BrokerSettings) -> str:
    """`quorum` or `classic`: as set, or for `auto` what the broker on the other end has."""
    if settings.queue_type != "auto":
        return settings.queue_type
    version = await server_version(channel)
    if broker_has(version, QUORUM_QUEUES_SINCE):
        return "quorum"
    log.warning("the broker (RabbitMQ %s) has no quorum queues: the queues are classic, on "
                "one node (upgrade to 3.8 or later to have them replicated)", version or "?")
    return "classic"


async def declare_probed(channel: AbstractChannel, name: str,
                         args: FieldTable) -> AbstractQueue:
    """Declared with `args`; a queue of that name declared otherwise (classic where quorum is
    asked, by an earlier release or by hand) is used as it is, with one line saying what to
    do: RabbitMQ refuses to change a queue's type or arguments and closes the channel that
    asks, so the asking is done on a channel of its own."""
    probe = await (await channel.get_underlay_channel()).connection.channel()
    try:
        await probe.queue_declare(name, durable=True, arguments=args)
    except ChannelPreconditionFailed as exc:
        log.warning("the queue %s exists with other arguments and is used as it is (the "
                    "broker says: %s); to have it as configured, stop the daemons, let it "
                    "drain, delete it (rabbitmqctl delete_queue %s) and start again: see the "
                    "README's Cluster", name, _reply_text(exc), name)
        return await channel.declare_queue(name, passive=True)
    finally:
        if not probe.is_closed:
            await probe.close()
    return await channel.declare_queue(name, durable=True, arguments=args)


def _reply_text(exc: ChannelPreconditionFailed) -> str:
    text = str(exc.args[0] if exc.args else exc)
    return text.removeprefix("PRECONDITION_FAILED - ")


async def declare_queue(
    channel: AbstractChannel, name: str, settings: BrokerSettings, *, kind: str | None = None,
) -> AbstractQueue:
    """The speak, control or dead-letter queue `name`, of type `kind` (queue_type's answer;
    asked here when not given)."""
    kind = kind or await queue_type(channel, settings)
    dead = name == settings.dead_letter_queue
    args = dead_letter_args(settings) if dead else _dlx_args(settings)
    if settings.single_active_consumer and not dead:
        args["x-single-active-consumer"] = True
    if kind == "quorum":
        args |= quorum_args(settings, dead_letters=not dead)
    return await declare_probed(channel, name, args)


async def declare_bounded(channel: AbstractChannel, name: str, settings: BrokerSettings,
                          args: FieldTable) -> AbstractQueue:
    """A queue of the channel's own beside the three (standing controls), of the same type."""
    if await queue_type(channel, settings) == "quorum":
        args = args | quorum_args(settings, dead_letters=False)
    return await declare_probed(channel, name, args)


async def declare(channel: AbstractChannel, settings: BrokerSettings) -> Queues:
    kind = await queue_type(channel, settings)
    dead = await declare_queue(channel, settings.dead_letter_queue, settings, kind=kind)
    speak = await declare_queue(channel, settings.speak_queue, settings, kind=kind)
    control = await declare_queue(channel, settings.control_queue, settings, kind=kind)
    return Queues(speak, control, dead)


def persistent(body: bytes, **kwargs: object) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        **kwargs,  # type: ignore[arg-type]
    )
