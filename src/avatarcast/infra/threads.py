"""Bridges between blocking work on owned threads and the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")

# Speech and face rendering run this much nicer than the pacer and FFmpeg: on a busy machine
# the stream's frames come first, and a cut is not held up by the next speech being rendered.
WORKER_NICE = 5


def start_thread(target: Callable[..., object], *args: object, name: str,
                 daemon: bool = False) -> threading.Thread:
    """A thread that runs in a copy of the caller's context, so its log lines carry the
    channel (and message) they belong to. Started."""
    ctx = contextvars.copy_context()
    thread = threading.Thread(target=ctx.run, args=(target, *args), name=name, daemon=daemon)
    thread.start()
    return thread


def background_priority() -> None:
    """Lower the calling thread's priority (and that of the threads it starts later, such as an
    ONNX or torch pool), for a ThreadPoolExecutor initializer. Linux only; elsewhere, a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid)
                                                 + WORKER_NICE))


async def iterate_in_thread(
    executor: Executor, make: Callable[[], Iterator[T]], ahead: int = 2
) -> AsyncGenerator[T, None]:
    """Run a blocking generator on `executor`, yielding its items on the event loop.

    The generator runs at most `ahead` items ahead of the consumer, then waits: a consumer
    that pauses (a full render buffer) pauses the work, and memory stays bounded. Leaving the
    loop early (a skip, a cancel) stops the generator at its next item.
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
        if fut.done():
            fut.result()
