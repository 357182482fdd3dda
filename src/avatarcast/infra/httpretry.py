"""HTTP calls to hosted services (speech, LLMs): which answers are worth trying again, and
how long to wait first (the server's Retry-After when it gives one)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

T = TypeVar("T")

MAX_RETRY_AFTER_S = 30.0


class Transient(Exception):
    """A failure that may pass: a 429, a 5xx, a timeout, a refused connection."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def wait(state: RetryCallState) -> float:
    """tenacity's wait: the server's Retry-After, else 0.25 s doubling up to 4 s."""
    exc = state.outcome.exception() if state.outcome is not None else None
    after = getattr(exc, "retry_after", None)
    if after is not None:
        return min(float(after), MAX_RETRY_AFTER_S)
    return float(min(0.25 * 2 ** (state.attempt_number - 1), 4.0))


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (an HTTP date falls back to our own backoff)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def server_says(body: bytes) -> str:
    """The error message of an OpenAI-style error body, or the start of the body."""
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") if isinstance(err, dict) else err
        return str(msg)[:300]
    except (ValueError, AttributeError):
        return body[:300].decode(errors="replace").strip()


async def with_retries(call: Callable[[], Awaitable[T]], attempts: int) -> T:
    """`call()`, tried again on a Transient failure (after `wait`) up to `attempts` times in
    all; the last Transient is raised."""
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts), wait=wait, reraise=True,
        retry=retry_if_exception(lambda e: isinstance(e, Transient)),
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises")
