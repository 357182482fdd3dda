"""broker/ledger.py against the real RabbitMQ: ids appended by one owner are read back by the
next, oldest first and bounded by dedupe_capacity; the stream is bounded; `off` keeps nothing
in the broker; and the local file absorbs what the ledger held."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from avatarcast.broker.connection import connect_robust
from avatarcast.broker.dedupe import HandledIds
from avatarcast.broker.ledger import Ledger, stream_name
from avatarcast.settings import BrokerSettings

pytestmark = pytest.mark.services


@pytest.fixture
def broker(rabbitmq: None) -> Iterator[BrokerSettings]:
    s = BrokerSettings(speak_queue=f"avatarcast.test.{uuid.uuid4().hex[:8]}.speak",
                       dedupe_capacity=100)
    yield s
    subprocess.run(["rabbitmqctl", "-q", "delete_queue", stream_name(s)], timeout=60,
                   capture_output=True, check=False)


async def _owner(s: BrokerSettings, append: list[str]) -> tuple[list[str], bool]:
    """One owner's life: open the ledger (what it read), append `append`."""
    conn = await connect_robust(s, name="avatarcast-test ledger")
    async with conn:
        ledger = Ledger(s)
        read = await ledger.open(conn)
        ok = [await ledger.append(i) for i in append]
        return read, all(ok) and ledger.enabled


def _queues() -> dict[str, dict[str, object]]:
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "type", "arguments",
                          "--formatter", "json"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return {q["name"]: q for q in json.loads(out)}


def test_the_next_owner_reads_what_the_last_appended(broker: BrokerSettings) -> None:
    first = ["m1", "m2", "a longer id with spaces and ünïcode"]
    read, ok = asyncio.run(_owner(broker, first))
    assert read == [] and ok
    read, ok = asyncio.run(_owner(broker, ["m4"]))
    assert read == first and ok  # (the first owner's marker is no id)
    read, _ = asyncio.run(_owner(broker, []))
    assert read == [*first, "m4"]
    q = _queues()[stream_name(broker)]
    assert q["type"] == "stream"


def test_reading_is_bounded_by_the_dedupe_capacity(broker: BrokerSettings) -> None:
    ids = [f"id-{i}" for i in range(250)]
    asyncio.run(_owner(broker, ids))
    read, _ = asyncio.run(_owner(broker, []))
    assert read == ids[-100:]


def test_a_full_window_is_read_whatever_markers_lie_among_the_ids(
    broker: BrokerSettings,
) -> None:
    """Every owner's start appends a marker: they take offsets, never places in the window."""
    ids = [f"id-{i}" for i in range(100)]
    for k in range(0, 100, 20):
        asyncio.run(_owner(broker, ids[k:k + 20]))
    read, _ = asyncio.run(_owner(broker, []))
    assert read == ids


def test_off_keeps_nothing_in_the_broker(broker: BrokerSettings) -> None:
    off = broker.model_copy(update={"ledger": "off"})
    read, ok = asyncio.run(_owner(off, ["m1"]))
    assert read == [] and not ok
    assert stream_name(off) not in _queues()


def test_the_local_file_absorbs_the_ledger_once(tmp_path: Path) -> None:
    handled = HandledIds(tmp_path / "handled-ids.log", capacity=100)
    handled.load()
    handled.add("mine")
    assert handled.absorb(["theirs-1", "mine", "theirs-2"]) == 2
    assert handled.absorb(["theirs-1"]) == 0
    again = HandledIds(tmp_path / "handled-ids.log", capacity=100)
    again.load()
    assert all(i in again for i in ("mine", "theirs-1", "theirs-2"))
