"""The standing controls a channel keeps in the broker: what pause, resume and set leave in
force, replayed as controls on a fresh daemon; what was not written by us is not replayed."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest

from avatarcast.broker import standing
from avatarcast.broker.connection import connect_robust
from avatarcast.broker.messages import ControlMessage
from avatarcast.broker.standing import Standing
from avatarcast.broker.topology import persistent
from avatarcast.settings import BrokerSettings
from harness.daemon import queue_depth


def control(**fields: object) -> ControlMessage:
    return ControlMessage.model_validate({"type": "control", **fields})


def test_pause_resume_and_set_fold_into_one_state() -> None:
    state = Standing()
    assert state.controls() == []
    assert state.apply(control(command="pause"))
    assert not state.apply(control(command="pause"))  # no change: nothing to write
    assert not state.apply(control(command="skip")) and not state.apply(control(command="clear"))
    assert state.apply(control(command="set", voice="alloy", animator="still"))
    assert state.apply(control(command="set", voice=None))  # back to the configured voice
    again = Standing.from_json(state.to_json())
    assert [(c.command, c.changes() if c.command == "set" else None) for c in again.controls()
            ] == [("set", {"animator": "still"}), ("pause", None)]
    assert again.apply(control(command="resume")) and again.controls()[-1].command == "set"


@pytest.mark.parametrize("body", [
    b"[]", b'"paused"', b'{"paused": true, "set": {"avatar": "../etc"}}',
    b'{"paused": true, "set": {"voice": "a\\u0000b"}}', b"\xff",
])
def test_what_we_did_not_write_is_refused(body: bytes) -> None:
    try:
        state = Standing.from_json(body)
    except (ValueError, KeyError):
        return  # read() logs it and starts from a fresh state
    # Whatever is read back can be replayed as valid controls.
    assert all(isinstance(c, ControlMessage) for c in state.controls())


def test_unknown_settings_are_dropped() -> None:
    state = Standing.from_json(b'{"paused": false, "set": {"colour": "red", "voice": 7}}')
    assert state.controls() == []


async def _starts(s: BrokerSettings, n: int, limit: int | None) -> list[bool]:
    """A paused state written once, then read by `n` starting owners in turn. `limit`: the
    queue is a quorum queue with that delivery limit, as RabbitMQ 4 gives every quorum queue
    (20 by default; 3.x has none unless asked)."""
    out = []
    for k in range(n + 1):
        conn = await connect_robust(s, name="avatarcast-test standing")
        async with conn:
            channel = await conn.channel(publisher_confirms=True)
            if k == 0 and limit is not None:
                await channel.declare_queue(standing.queue_name(s), durable=True, arguments={
                    "x-queue-type": "quorum", "x-delivery-limit": limit, "x-max-length": 1,
                    "x-overflow": "drop-head"})
            queue = await standing.declare(channel, s)
            if k == 0:
                state = Standing()
                state.apply(control(command="pause"))
                assert await standing.write(channel, s, state)
                continue
            out.append((await standing.read(queue, channel, s)).paused)
    return out


@pytest.mark.services
@pytest.mark.parametrize(("kind", "limit"), [("quorum", 5), ("quorum", None),
                                             ("classic", None)])
def test_the_standing_state_outlives_any_number_of_starts(
    rabbitmq: None, kind: str, limit: int | None
) -> None:
    """Each start reads it and leaves it, more starts than a quorum queue's delivery limit
    (each read used to count as a delivery: with RabbitMQ 4's default limit, the 21st start
    found nothing, and a paused channel aired its backlog)."""
    s = BrokerSettings(control_queue=f"avatarcast.test.{uuid.uuid4().hex[:8]}.control",
                       queue_type=kind)
    try:
        assert asyncio.run(_starts(s, 12, limit)) == [True] * 12
        assert queue_depth(standing.queue_name(s)) == 1
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_queue", standing.queue_name(s)],
                       timeout=60, capture_output=True, check=False)


async def _read_raw(s: BrokerSettings, body: bytes) -> tuple[bool, bytes | None]:
    """`body` left by another version; a start reads it: (paused?, what stays queued)."""
    conn = await connect_robust(s, name="avatarcast-test standing")
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        queue = await standing.declare(channel, s)
        await channel.default_exchange.publish(persistent(body), routing_key=queue.name)
        paused = (await standing.read(queue, channel, s)).paused
        left = await queue.get(no_ack=True, fail=False)
        return paused, None if left is None else left.body


@pytest.mark.services
def test_a_start_leaves_what_a_newer_version_wrote_as_it_was(rabbitmq: None) -> None:
    s = BrokerSettings(control_queue=f"avatarcast.test.{uuid.uuid4().hex[:8]}.control")
    body = b'{"paused": true, "set": {"voice": "en"}, "from_the_future": {"x": 1}}'
    try:
        assert asyncio.run(_read_raw(s, body)) == (True, body)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_queue", standing.queue_name(s)],
                       timeout=60, capture_output=True, check=False)
