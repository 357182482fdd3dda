"""The owner of a component's background tasks: each is kept, named, logged when it dies (and
reported to whoever asked), stopped and awaited on close. Owned by the event loop."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

DeathListener = Callable[[str, BaseException], None]


class Tasks:
    """Two kinds: a lasting task runs as long as its owner (the owner stops it, in the order
    it closes its parts); a passing one does a piece of work (a settlement) and gets time to
    finish it at close (`drain`)."""

    def __init__(self, on_death: DeathListener | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lasting: set[asyncio.Task[Any]] = set()
        self._on_death = on_death

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, *,
              lasting: bool = False) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        if lasting:
            self._lasting.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._lasting.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s died", task.get_name(), exc_info=exc)
            if self._on_death is not None:
                self._on_death(task.get_name(), exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def stop(self, task: asyncio.Task[Any]) -> None:
        """Cancel one task and wait for it to end."""
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def drain(self, grace_s: float = 5.0) -> None:
        """Give the passing tasks still running (settlements under way) `grace_s` to finish,
        then cancel the ones stuck, saying where each was."""
        passing = self._tasks - self._lasting
        if not passing:
            return
        _, stuck = await asyncio.wait(passing, timeout=grace_s)
        for task in stuck:
            stack = io.StringIO()
            task.print_stack(file=stack)
            log.error("task %s did not finish; cancelling it:\n%s", task.get_name(),
                      stack.getvalue())
            task.cancel()

    async def aclose(self) -> None:
        """Cancel whatever still runs and wait for it (the owner's last step)."""
        left = list(self._tasks)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
