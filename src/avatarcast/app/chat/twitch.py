"""Twitch chat over IRC (irc.chat.twitch.tv, TLS on 6697), with IRCv3 tags: PRIVMSG (bits
make it paid), USERNOTICE (subscriptions), CLEARCHAT and CLEARMSG (what moderators removed).
It answers the server's PING, reconnects with a growing backoff when the connection drops or
goes silent, at once when the server says RECONNECT, and gives up only when the login is
refused. The token is sent as `PASS oauth:…` and appears nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator

from .irc import IrcError, Line, parse
from .message import ChatEvent, ChatMessage, Removal

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
IDLE_S = 60.0  # nothing heard this long: a PING of ours
PONG_S = 10.0  # and no answer to it this long: the connection is dead
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
STABLE_S = 30.0  # connected this long: the backoff starts over
SUBSCRIPTIONS = {"sub", "resub", "subgift", "submysterygift", "giftpaidupgrade",
                 "primepaidupgrade", "anongiftpaidupgrade"}
# The bits' emotes (Cheer100, Kappa50): Twitch's global cheermotes' prefixes and a number
# ("PS5" or "mp3" in the words stay).
_CHEERMOTE = re.compile(
    r"(?i)(?<!\S)(?:cheer|cheerwhal|doodlecheer|biblethump|corgo|uni|showlove|party|seemsgood|"
    r"pride|kappa|frankerz|heyguys|dansgame|elegiggle|trihard|kreygasm|4head|swiftrage|"
    r"notlikethis|failfish|vohiyo|pjsalt|mrdestructoid|bday|ripcheer|shamrock|streamlabs|"
    r"muxy|holidaycheer|goal|anon|charity)\d+(?!\S)")
REFUSED = ("Login authentication failed", "Improperly formatted auth")


class ChatError(Exception):
    """What reconnecting cannot mend: the login was refused."""


class TwitchChat:
    def __init__(self, channel: str, *, nick: str = "justinfan31337", token: str | None = None,
                 host: str = "irc.chat.twitch.tv", port: int = 6697, tls: bool = True) -> None:
        self.channel = channel.lstrip("#").lower()
        self._nick, self._token = nick.lower(), token
        self._host, self._port, self._tls = host, port, tls
        self._writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def events(self) -> AsyncIterator[ChatEvent]:
        backoff = BACKOFF_MIN_S
        while True:
            began = time.monotonic()
            try:
                async for event in self._session():
                    yield event
                backoff = BACKOFF_MIN_S  # RECONNECT: the server asks, at once
                continue
            except (OSError, TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError) as exc:  # (a line over 64 KiB: hostile)
                if time.monotonic() - began > STABLE_S:
                    backoff = BACKOFF_MIN_S
                log.warning("twitch chat #%s: %s; reconnecting in %.0f s", self.channel,
                            _describe(exc), backoff)
            finally:
                await self._close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def aclose(self) -> None:
        await self._close()

    async def _session(self) -> AsyncIterator[ChatEvent]:
        """One connection: login, join, then its events until it ends (returns on the
        server's RECONNECT; raises when it drops)."""
        ctx = ssl.create_default_context() if self._tls else None
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, self._writer = await asyncio.open_connection(
                self._host, self._port, ssl=ctx, limit=64 * 1024)
        self.connects += 1
        await self._send("CAP REQ :twitch.tv/tags twitch.tv/commands")
        if self._token:
            await self._send(f"PASS oauth:{self._token.removeprefix('oauth:')}")
        await self._send(f"NICK {self._nick}")
        await self._send(f"JOIN #{self.channel}")
        pinged = False
        while True:
            try:
                async with asyncio.timeout(PONG_S if pinged else IDLE_S):
                    raw = await reader.readuntil(b"\n")
            except TimeoutError:
                if pinged:
                    raise TimeoutError(f"no answer to a PING in {PONG_S:g} s") from None
                await self._send("PING :avatarcast")
                pinged = True
                continue
            pinged = False
            try:
                line = parse(raw.decode("utf-8", "replace"))
            except IrcError:
                continue  # one bad line is not the connection's end
            if line.command == "PING":
                await self._send(f"PONG :{line.trailing}")
            elif line.command == "RECONNECT":
                log.info("twitch chat #%s: the server asks to reconnect", self.channel)
                return
            elif line.command == "NOTICE" and any(r in line.trailing for r in REFUSED):
                raise ChatError(f"twitch refused the login of {self._nick}: {line.trailing}")
            elif (event := to_event(line)) is not None:
                yield event

    async def _send(self, text: str) -> None:
        assert self._writer is not None
        self._writer.write(text.encode() + b"\r\n")
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await self._writer.drain()

    async def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await writer.wait_closed()


def to_event(line: Line) -> ChatEvent | None:
    """A chat event out of one of the channel's lines (None: not one)."""
    t = line.tags
    if line.command == "CLEARMSG":
        return Removal("twitch", message_id=t.get("target-msg-id") or None)
    if line.command == "CLEARCHAT":
        # With a user: that user's messages (a ban or time-out); without: the whole chat.
        target = t.get("target-user-id") or (line.params[1] if len(line.params) > 1 else None)
        return Removal("twitch", user=target)
    if line.command not in ("PRIVMSG", "USERNOTICE") or not t.get("id"):
        return None
    text = line.trailing if line.command == "PRIVMSG" or len(line.params) > 1 else ""
    if text.startswith("\x01ACTION ") and text.endswith("\x01"):
        text = text[8:-1]
    kind: str = "message"
    amount = currency = tier = None
    if line.command == "USERNOTICE":
        if t.get("msg-id") not in SUBSCRIPTIONS:
            return None
        kind, tier = "subscription", t.get("msg-param-sub-plan") or None
    elif (bits := t.get("bits", "")).isdigit():
        kind, amount, currency = "paid", float(bits), "bits"
        text = " ".join(_CHEERMOTE.sub("", text).split())  # "cheer100" is not for reading
    sent = t.get("tmi-sent-ts", "")
    return ChatMessage(
        platform="twitch", id=t["id"], user=t.get("user-id") or t.get("login") or line.nick,
        display_name=t.get("display-name") or t.get("login") or line.nick, text=text,
        at=int(sent) / 1000 if sent.isdigit() else time.time(), kind=kind,  # type: ignore[arg-type]
        amount=amount, currency=currency, tier=tier,
        badges=tuple(b for b in t.get("badges", "").split(",") if b))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
