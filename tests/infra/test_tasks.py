"""A component's background tasks: a task that dies is logged and reported, `stop` ends one,
the drain gives the passing ones still running their grace, then cancels the stuck, saying
where; the close cancels whatever is left."""

from __future__ import annotations

import asyncio

import pytest

from avatarcast.infra.tasks import Tasks


async def test_a_task_that_dies_is_reported_with_its_name_and_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    died: list[tuple[str, str]] = []
    tasks = Tasks(on_death=lambda name, exc: died.append((name, str(exc))))

    async def broken() -> None:
        raise OSError("disk full")

    task = tasks.spawn(broken(), "render-worker")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # done callbacks run on the next turn
    assert died == [("render-worker", "disk full")]
    assert "task render-worker died" in caplog.text
    assert len(tasks) == 0


async def test_a_cancelled_or_finished_task_is_no_death() -> None:
    died: list[str] = []
    tasks = Tasks(on_death=lambda name, exc: died.append(name))
    done = tasks.spawn(asyncio.sleep(0), "quick")
    forever = tasks.spawn(asyncio.Event().wait(), "forever")
    await done
    await tasks.stop(forever)
    await asyncio.sleep(0)
    assert forever.cancelled() and died == [] and len(tasks) == 0


async def test_the_drain_lets_a_settlement_finish_and_cancels_the_stuck(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Tasks()
    finished = asyncio.Event()

    async def settling() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    settle = tasks.spawn(settling(), "settle-m1")
    stuck = tasks.spawn(asyncio.Event().wait(), "stuck")
    events = tasks.spawn(asyncio.Event().wait(), "events", lasting=True)
    await tasks.drain(grace_s=5.0)  # the stuck one costs this much; the settlement 50 ms
    assert finished.is_set() and settle.done() and not settle.cancelled()
    await asyncio.sleep(0)
    assert stuck.cancelled()
    assert "task stuck did not finish; cancelling it" in caplog.text
    assert "settle-m1" not in caplog.text
    # A lasting task is its owner's to stop: the drain leaves it running; the close does not.
    assert not events.done() and "events" not in caplog.text
    await tasks.aclose()
    assert events.cancelled() and len(tasks) == 0
