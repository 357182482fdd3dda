"""The queues the daemon and the CLI both declare, with identical arguments."""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue
from aiormq.abc import FieldTable

from ..settings import BrokerSettings

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


async def declare_queue(
    channel: AbstractChannel, name: str, settings: BrokerSettings
) -> AbstractQueue:
    if name == settings.dead_letter_queue:
        return await channel.declare_queue(name, durable=True)
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
