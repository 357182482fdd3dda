"""The chat relay on the real RabbitMQ: what passed moderation is published to the speak queue
as the daemon's wire messages, the best first, only while the queue has room; what moderation
refused or a moderator removed is never published, each decision a lifecycle event with its
reason; and a restart that reads the same chat again publishes nothing twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from avatarcast.app.chat.message import ChatEvent, ChatMessage, Removal
from avatarcast.app.chat.relay import Relay
from avatarcast.settings import Settings
from harness.daemon import AMQP, QueueNames
from harness.events import EventTap


class Script:
    """A chat that says what it is given, then keeps the line open (as a quiet chat does)."""

    def __init__(self) -> None:
        self.lines: asyncio.Queue[ChatEvent] = asyncio.Queue()

    async def events(self) -> AsyncIterator[ChatEvent]:
        while True:
            yield await self.lines.get()

    async def aclose(self) -> None:
        pass


def _msg(i: str, text: str, user: str, **kw: Any) -> ChatMessage:
    import time

    return ChatMessage(platform="twitch", id=i, user=user, display_name=user.title(),
                       text=text, at=time.time(), **kw)


async def _take(queue: str, n: int, limit_s: float = 15) -> list[dict[str, Any]]:
    """The next n messages of `queue`, removed from it (as a daemon would take them)."""
    out: list[dict[str, Any]] = []
    conn = await aio_pika.connect(AMQP)
    async with conn, asyncio.timeout(limit_s):
        while True:  # until the relay declared it
            try:
                q = await (await conn.channel()).declare_queue(queue, passive=True)
                break
            except aio_pika.exceptions.ChannelNotFoundEntity:
                await asyncio.sleep(0.05)
        while len(out) < n:
            if (m := await q.get(no_ack=True, fail=False)) is None:
                await asyncio.sleep(0.05)
                continue
            out.append(json.loads(m.body))
    return out


async def _depth(queue: str) -> int:
    conn = await aio_pika.connect(AMQP)
    async with conn:
        q = await (await conn.channel()).declare_queue(queue, passive=True)
        return int(q.declaration_result.message_count or 0)


def _settings(queues: QueueNames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for k, v in {**queues.env(), "AVATARCAST_STATE_DIR": str(tmp_path),
                 "AVATARCAST_CHAT__MAX_QUEUED": "1", "AVATARCAST_CHAT__PER_MINUTE": "60",
                 "AVATARCAST_CHAT__BLOCKLIST": '["badword"]'}.items():
        monkeypatch.setenv(k, v)
    return Settings()


@pytest.mark.services
def test_the_chosen_are_published_best_first_the_refused_never_and_none_twice(
    queues: QueueNames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(queues, tmp_path, monkeypatch)
    state = tmp_path / "chat.ids"
    said = [
        _msg("a", "Why is the sky blue?", "ana"),  # published at once: the queue was empty
        _msg("b", "hello everyone", "bo"),
        _msg("c", "You are a b.a.d.w.o.r.d", "cy"),  # blocked, seen through the dots
        _msg("d", "free followers at spamfollow.com", "di"),  # a link
        _msg("e", "What is your favourite colour?", "ed"),
        _msg("f", "Where do you live?", "fi"),  # removed by a moderator while it waits
        _msg("g", "", "gu", kind="subscription", tier="1000"),  # thanked first
        _msg("h", "Why is the sky blue??", "hu"),  # the same question again
    ]

    async def run(script: list[ChatEvent], taking: bool) -> list[dict[str, Any]]:
        source = Script()
        relay = Relay(settings, {"twitch": source}, state)
        running = asyncio.ensure_future(relay.run())
        taken = []
        try:
            source.lines.put_nowait(script[0])
            if taking:  # on the empty queue at once
                taken += await _take(queues.speak, 1)
            for e in script[1:]:
                source.lines.put_nowait(e)
            await asyncio.sleep(0.5)
            if taking:
                # The queue had room for one (max_queued); the rest wait. A moderator
                # removes one of them; then the daemon takes texts, one at a time.
                source.lines.put_nowait(Removal("twitch", message_id="f"))
                await asyncio.sleep(0.5)
                for _ in range(3):
                    taken += await _take(queues.speak, 1)
            await asyncio.sleep(0.5)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        return taken

    with EventTap(queues.events) as tap:
        first, *rest = asyncio.run(run(said, True))
        assert [m["id"] for m in [first, *rest]] == [
            "chat:twitch:a", "chat:twitch:g", "chat:twitch:e", "chat:twitch:b"]
        assert first == {"v": 1, "type": "ask", "id": "chat:twitch:a",
                            "prompt": "A viewer wrote in the live chat (quoted between the "
                                      "tags):\n<chat>\nName: Ana\nMessage: Why is the sky "
                                      "blue?\n</chat>",
                            "system": settings.chat.system, "intro": "Ana asks: Why is the sky "
                            "blue?", "voice": None, "avatar": None, "interrupt": False}
        assert rest[0]["type"] == "speak" and rest[0]["text"] == \
            "Thank you for subscribing, Gu!"
        # Started again on a chat that says it all again: nothing new to publish.
        again = asyncio.run(run(said, False))
        assert again == [] and asyncio.run(_depth(queues.speak)) == 0
        events = tap.wait_for(lambda ev: sum(e["event"] == "chat.dropped" for e in ev) >= 4,
                              10, "the drops")
    dropped = {e["chat_id"]: e["reason"] for e in events if e["event"] == "chat.dropped"}
    assert dropped == {"c": "blocked word", "d": "link", "f": "removed by a moderator",
                       "h": "duplicate"}
    published = [e["chat_id"] for e in events if e["event"] == "chat.published"]
    assert published == ["a", "g", "e", "b"]
