"""Bridges between blocking work on owned threads and the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")

# Every thread of the daemon runs at the same priority. Speech and face rendering used to run 5
# nice levels below the pacer; but they share the pacer's GIL, and a low-priority thread that
# holds it while FFmpeg's encoders take the cores keeps the pacer waiting. With five 720p
# channels on two cores (bench capacity, texts to every channel at once, 2 minutes), frames
# held for a late animator fell from 184 to 40, and late ticks from 81 to 38, without it.


def start_thread(target: Callable[..., object], *args: object, name: str,
                 daemon: bool = False) -> threading.Thread:
    """A thread that runs in a copy of the caller's context, so its log lines carry the
    channel (and message) they belong to. Started."""
    ctx = contextvars.copy_context()
    thread = threading.Thread(target=ctx.run, args=(target, *args), name=name, daemon=daemon)
    thread.start()
    return thread


async def iterate_in_thread(
    executor: Executor, make: Callable[[], Iterator[T]], ahead: int = 2,
    abort: Callable[[], None] | None = None,
) -> AsyncGenerator[T, None]:
    """Run a blocking generator on `executor`, yielding its items on the event loop.

    The generator runs at most `ahead` items ahead of the consumer, then waits: a consumer
    that pauses (a full render buffer) pauses the work, and memory stays bounded. Leaving the
    loop early (a skip, a cancel) stops the generator at its next item, or, given `abort`,
    within the item it is making (`abort` is called from the event loop and must end that
    item's work, by an exception in the generator).
    """
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    stop = threading.Event()
    room = threading.Semaphore(ahead)

    def put(kind: str, value: object) -> None:
        loop.call_soon_threadsafe(items.put_nowait, (kind, value))

    def work() -> None:
        try:
            for item in make():
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                put("item", item)
        except BaseException as exc:  # handed to the awaiting side, re-raised there
            put("error", exc)
        finally:
            put("end", None)

    fut = loop.run_in_executor(executor, work)
    try:
        while True:
            kind, value = await items.get()
            if kind == "item":
                room.release()
                yield value  # type: ignore[misc]
            elif kind == "error":
                assert isinstance(value, BaseException)
                raise value
            else:
                return
    finally:
        stop.set()
        if abort is not None and not fut.done():
            abort()
        if fut.done():
            fut.result()
