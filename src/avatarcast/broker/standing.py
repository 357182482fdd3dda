"""Standing controls: what a control leaves in force (a pause; a `set` of the avatar, animator
or voice), kept in the broker, so that a restarted daemon, or the channel's next owner in a
fleet on another machine, starts as the channel was left instead of airing a paused backlog.

One durable queue beside the control queue (`<control queue>.standing`) holds one message:
the latest state (`x-max-length` 1, a newer one drops the older). The owner writes it, with a
publisher confirm, before it acks the control that changed it; a starting owner reads it before
it consumes the speak queue, and leaves it in place. Owned by the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractQueue
from pydantic import ValidationError

from ..settings import BrokerSettings
from .failures import BROKER_ERRORS, CLOSE_TIMEOUT_S, describe
from .messages import SETTABLE, ControlMessage
from .topology import declare_bounded, persistent

log = logging.getLogger(__name__)

SUFFIX = ".standing"


def queue_name(settings: BrokerSettings) -> str:
    return settings.control_queue + SUFFIX


class Standing:
    """The channel's standing state: paused or not, and what `set` changed."""

    def __init__(self) -> None:
        self.paused = False
        self.changes: dict[str, str | None] = {}

    def apply(self, msg: ControlMessage) -> bool:
        """Fold a control in; True when the standing state changed."""
        before = (self.paused, dict(self.changes))
        if msg.command in ("pause", "resume"):
            self.paused = msg.command == "pause"
        elif msg.command == "set":
            self.changes.update(msg.changes())
        elif msg.command == "clear":
            pass  # clears the queue, not the pause
        return before != (self.paused, self.changes)

    def controls(self) -> list[ControlMessage]:
        """The controls that bring a fresh daemon to this state."""
        out = []
        if changes := {k: v for k, v in self.changes.items() if v is not None}:
            out.append(ControlMessage.model_validate(
                {"type": "control", "command": "set", **changes}))
        if self.paused:
            out.append(ControlMessage(type="control", command="pause"))
        return out

    def to_json(self) -> bytes:
        return json.dumps({"paused": self.paused, "set": self.changes}).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Standing:
        data: Any = json.loads(body)
        state = cls()
        state.paused = bool(data["paused"]) if isinstance(data, dict) else False
        changes = data.get("set") if isinstance(data, dict) else None
        if isinstance(changes, dict):
            state.changes = {k: v for k, v in changes.items()
                             if k in SETTABLE and (v is None or isinstance(v, str))}
        # What a publisher could not have sent is not replayed either.
        state.controls()
        return state


async def declare(channel: AbstractChannel, settings: BrokerSettings) -> AbstractQueue:
    return await declare_bounded(channel, queue_name(settings), settings,
                                 {"x-max-length": 1, "x-overflow": "drop-head"})


async def read(queue: AbstractQueue, channel: AbstractChannel,
               settings: BrokerSettings) -> Standing:
    """The state left by the last owner (a fresh one when none was left); it stays queued, as
    a fresh copy of its bytes: a copy read and requeued counts as delivered once more, and a
    quorum queue drops a message past its delivery limit (RabbitMQ 4 gives every quorum queue
    one), which would forget a pause after that many starts."""
    async with asyncio.timeout(CLOSE_TIMEOUT_S * 2):
        msg = await queue.get(no_ack=False, fail=False)
    if msg is None:
        return Standing()
    try:
        state = Standing.from_json(msg.body)
    except (ValueError, KeyError, ValidationError) as exc:
        log.warning("ignoring the unreadable standing controls in %s (%s)", queue.name, exc)
        await msg.nack(requeue=True)
        return Standing()
    # The copy first, confirmed (x-max-length 1 drops nothing: the read one is not ready),
    # then the read one goes; kept byte for byte, whatever a newer version wrote in it.
    if await _keep(channel, settings, msg.body, state):
        await msg.ack()
    else:
        await msg.nack(requeue=True)
    return state


async def write(channel: AbstractChannel, settings: BrokerSettings, state: Standing) -> bool:
    """Keep `state` for the next owner; False (and a line saying so) when the broker did not
    confirm it: the control holds here, but not after a restart or a failover."""
    return await _keep(channel, settings, state.to_json(), state)


async def _keep(channel: AbstractChannel, settings: BrokerSettings, body: bytes,
                state: Standing) -> bool:
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S * 2):
            await channel.default_exchange.publish(persistent(body),
                                                   routing_key=queue_name(settings))
        return True
    except (*BROKER_ERRORS, TimeoutError) as exc:
        log.warning("the standing controls (paused: %s) were not kept by the broker (%s); "
                    "they hold until this daemon stops", state.paused, describe(exc))
        return False
