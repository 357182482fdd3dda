"""What a broker error means, in one line for the log or the terminal."""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection

log = logging.getLogger(__name__)

# Everything a broker call can raise when the broker or the network fails.
BROKER_ERRORS = (aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError, ConnectionError,
                 OSError, RuntimeError)


def describe(exc: BaseException) -> str:
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
        return ("the broker refused the login: check the user and password in "
                "AVATARCAST_BROKER__URL")
    if isinstance(exc, aiormq.exceptions.ChannelPreconditionFailed):
        return f"the broker refused a queue declaration: {exc}"
    # Several aio-pika errors carry no text (ChannelInvalidStateError()).
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_refusal(exc: BaseException) -> bool:
    """Not a network hiccup: the broker answered and said no."""
    return isinstance(exc, aiormq.exceptions.ProbableAuthenticationError)


CLOSE_TIMEOUT_S = 5.0


async def close_robust(conn: AbstractRobustConnection | None, what: str) -> None:
    """Close a robust connection without waiting on a broker that is away: calls on a robust
    connection that is reconnecting wait for the broker to come back, and would hold a
    shutdown until it does."""
    if conn is None or conn.is_closed:
        return
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await conn.close()
    except TimeoutError:
        log.warning("%s: the broker did not answer within %g s while closing; let go", what,
                    CLOSE_TIMEOUT_S)
    except BROKER_ERRORS as exc:
        log.warning("%s: closing: %s", what, describe(exc))
