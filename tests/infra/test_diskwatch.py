"""The disk watch's own deadline: a check that hangs (a dead network mount) is said in the
state /healthz shows, and cleared once the check answers; one thread, never a pile of them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from avatarcast.infra.diskwatch import DiskWatch


async def _until(what: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not what():  # noqa: ASYNC110 (a state another thread changes)
            await asyncio.sleep(0.05)


async def test_a_hung_check_is_said_and_cleared_when_it_answers(tmp_path: Path) -> None:
    release, calls = threading.Event(), []

    class Hanging(DiskWatch):
        def check(self) -> None:
            calls.append(1)
            release.wait(30)

    watch = Hanging({"state dir": tmp_path}, min_free_mb=1)
    watch.hung_s = 0.2
    task = asyncio.create_task(watch.run())
    try:
        await _until(lambda: watch.state is not None)
        assert watch.state == "the disk check has not answered for 0.2 s"
        assert len(calls) == 1  # the hung check is waited for, not started again
        release.set()
        await _until(lambda: watch.state is None)
    finally:
        release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
