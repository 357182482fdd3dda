"""A channel's lease against the real RabbitMQ: one connection at a time holds it; the broker
frees it with its holder's connection; a lease lost behind its holder's back fails the next
confirmation, and the holder stops counting itself the owner once `fence_s` has passed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from avatarcast.app.lease import LeaseLost, Leases
from avatarcast.settings import BrokerSettings, FleetSettings
from harness.services import rabbitmqctl

pytestmark = pytest.mark.services

FLEET = FleetSettings(heartbeat_s=2, fence_s=1.0)


@pytest.fixture
async def two(rabbitmq: None) -> AsyncIterator[tuple[Leases, Leases]]:
    a, b = Leases(BrokerSettings(), FLEET), Leases(BrokerSettings(), FLEET)
    await a.connect()
    await b.connect()
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


def _lease() -> str:
    return f"avatarcast.test.{uuid.uuid4().hex[:8]}.speak.owner"


async def test_one_holder_at_a_time_and_freed_with_its_connection(
    two: tuple[Leases, Leases],
) -> None:
    a, b = two
    q = _lease()
    assert await a.take(q)
    assert not await b.take(q)  # held by a's connection
    await a.confirm()
    assert a.valid()
    await a.aclose()  # a's connection goes: the broker frees the lease at once
    assert not a.valid()
    assert await b.take(q)
    await b.release(q)


async def test_a_lease_lost_fails_the_confirmation_and_the_fence_closes(
    two: tuple[Leases, Leases],
) -> None:
    a, _ = two
    q = _lease()
    assert await a.take(q)
    await a.confirm()
    await asyncio.to_thread(rabbitmqctl, "delete_queue", q)  # gone behind a's back
    with pytest.raises(LeaseLost):
        await a.confirm()
    await asyncio.sleep(FLEET.fence_s)
    assert not a.valid()  # past the fence: a no longer publishes as the channel's owner
