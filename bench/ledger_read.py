"""What a full ledger costs a starting owner (part of `python -m bench cluster`): a channel's
stream of handled ids is filled to the read window (`broker.dedupe_capacity`, 10 000 ids),
then to five times that, and a new owner's read (`Ledger.open`: attach, append a marker, read
the window up to it) is timed each way. The read is bounded by the window, not by how much
the stream holds."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import aio_pika

from avatarcast.broker.ledger import Ledger, stream_name
from avatarcast.settings import BrokerSettings

READS = 5
BATCH = 500


async def _append(settings: BrokerSettings, url: str, first: int, n: int) -> float:
    """Append ids first..first+n (confirmed, BATCH at a time); the ids a second."""
    conn = await aio_pika.connect_robust(url)
    try:
        ledger = Ledger(settings)
        await ledger.open(conn)
        t0 = time.perf_counter()
        for i in range(first, first + n, BATCH):
            ok = await asyncio.gather(*(ledger.append(f"id-{j:06d}")
                                        for j in range(i, min(first + n, i + BATCH))))
            if not all(ok):
                raise RuntimeError("an append was not confirmed")
        return n / (time.perf_counter() - t0)
    finally:
        await conn.close()


async def _reads(settings: BrokerSettings, url: str, expect: int) -> list[float]:
    out = []
    for _ in range(READS):
        conn = await aio_pika.connect_robust(url)
        try:
            t0 = time.perf_counter()
            ids = await Ledger(settings).open(conn)
            out.append(time.perf_counter() - t0)
        finally:
            await conn.close()
        if len(ids) != expect:
            raise RuntimeError(f"read {len(ids)} ids, expected {expect}")
    return out


async def _measure(url: str) -> dict[str, Any]:
    settings = BrokerSettings(url=url, speak_queue=f"avatarcast.bench.{uuid.uuid4().hex[:8]}")
    window = settings.dedupe_capacity
    figures: dict[str, Any] = {"window": window}
    try:
        figures["appends_per_s"] = round(await _append(settings, url, 0, window))
        figures[f"read_{window}_of_{window}_ms"] = _ms(await _reads(settings, url, window))
        await _append(settings, url, window, 4 * window)
        figures[f"read_{window}_of_{5 * window}_ms"] = _ms(await _reads(settings, url, window))
    finally:
        conn = await aio_pika.connect_robust(url)
        async with conn:
            channel = await conn.channel()
            await channel.queue_delete(stream_name(settings))
    return figures


def _ms(xs: list[float]) -> dict[str, float]:
    s = sorted(x * 1000 for x in xs)
    return {"median": round(statistics.median(s)), "max": round(s[-1]), "n": len(s)}


def measure(url: str = "amqp://guest:guest@127.0.0.1:5672/") -> dict[str, Any]:
    return asyncio.run(_measure(url))


if __name__ == "__main__":
    print(measure())
