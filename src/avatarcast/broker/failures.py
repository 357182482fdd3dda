"""What a broker error means, in one line for the log or the terminal."""

from __future__ import annotations

import aio_pika
import aiormq

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
