"""Publishing for the CLI (`say`, `control`): declared queues, persistent messages, confirms."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from ..settings import BrokerSettings
from .failures import BROKER_ERRORS, describe
from .messages import ControlMessage, SpeakMessage
from .topology import declare, persistent


class PublishError(Exception):
    pass


async def publish(settings: BrokerSettings, msg: SpeakMessage | ControlMessage) -> None:
    conn: AbstractRobustConnection | None = None
    try:
        conn = await aio_pika.connect_robust(settings.url.get_secret_value(), fail_fast=True)
        channel = await conn.channel(publisher_confirms=True)
        queues = await declare(channel, settings)
        queue = queues.speak if isinstance(msg, SpeakMessage) else queues.control
        extra = {"message_id": msg.id} if isinstance(msg, SpeakMessage) else {}
        await channel.default_exchange.publish(
            persistent(msg.model_dump_json(exclude_defaults=False).encode(), **extra),
            routing_key=queue.name,
            mandatory=True,
        )
    except BROKER_ERRORS as exc:
        raise PublishError(describe(exc)) from None
    finally:
        if conn is not None:
            await conn.close()
