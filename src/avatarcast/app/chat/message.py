"""What every chat adapter gives: one ChatMessage per viewer's message (or paid event), and a
Removal when the platform's moderators delete a message or clear a user, so that what waits
to be answered can be dropped. The Protocol every adapter meets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

Kind = Literal["message", "paid", "subscription", "membership"]


@dataclass(frozen=True)
class ChatMessage:
    platform: str  # "twitch", "youtube", "webhook"
    id: str  # the platform's own id for it (what a restart recognizes)
    user: str  # a stable id or login
    display_name: str
    text: str
    at: float  # when it was sent, Unix seconds (the platform's time when it gives one)
    kind: Kind = "message"
    amount: float | None = None  # what was paid, in `currency` (bits: currency "bits")
    currency: str | None = None
    tier: str | None = None  # a subscription's tier ("1000", "prime"...)
    badges: tuple[str, ...] = field(default_factory=tuple)  # "moderator", "subscriber/12"...


@dataclass(frozen=True)
class Removal:
    """The platform removed a message (`message_id`) or every message of a user (`user`)."""

    platform: str
    message_id: str | None = None
    user: str | None = None


ChatEvent = ChatMessage | Removal


class ChatSource(Protocol):
    """A platform's chat, as events, for as long as it is read; it reconnects by itself and
    raises only what retrying cannot mend (a token refused)."""

    def events(self) -> AsyncIterator[ChatEvent]: ...

    async def aclose(self) -> None: ...
