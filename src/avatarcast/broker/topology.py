"""The queues the daemon and the CLI both declare, with identical arguments."""

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


async def _declare_dead(channel: AbstractChannel, settings: BrokerSettings) -> AbstractQueue:
    """Bounded; a queue of that name declared otherwise (by a release before the bound) is
    kept as it is: RabbitMQ refuses to change a queue's arguments, and closes the channel that
    asks, so the asking is done on a channel of its own."""
    name, args = settings.dead_letter_queue, dead_letter_args(settings)
    probe = await (await channel.get_underlay_channel()).connection.channel()
    try:
        await probe.queue_declare(name, durable=True, arguments=args)
    except ChannelPreconditionFailed:
        log.warning("the dead-letter queue %s exists with other arguments and stays "
                    "unbounded (delete it when empty, or set a policy: see the README's "
                    "Messages)", name)
        return await channel.declare_queue(name, passive=True)
    finally:
        if not probe.is_closed:
            await probe.close()
    return await channel.declare_queue(name, durable=True, arguments=args)


async def declare_queue(
    channel: AbstractChannel, name: str, settings: BrokerSettings
) -> AbstractQueue:
    if name == settings.dead_letter_queue:
        return await _declare_dead(channel, settings)
    args = _dlx_args(settings)
    if settings.single_active_consumer:
        args["x-single-active-consumer"] = True
    return await channel.declare_queue(name, durable=True, arguments=args)


async def declare(channel: AbstractChannel, settings: BrokerSettings) -> Queues:
    dead = await declare_queue(channel, settings.dead_letter_queue, settings)
    speak = await declare_queue(channel, settings.speak_queue, settings)
    control = await declare_queue(channel, settings.control_queue, settings)
    return Queues(speak, control, dead)


def persistent(body: bytes, **kwargs: object) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        **kwargs,  # type: ignore[arg-type]
    )
