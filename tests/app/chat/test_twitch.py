"""Twitch chat against a local IRC server speaking its dialect: tagged messages, bits,
subscriptions and moderators' removals come out as ChatMessage and Removal; PING is answered;
a dropped connection and the server's RECONNECT are reconnected; a refused token ends it with
a clear error, and the token is never logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from avatarcast.app.chat import twitch
from avatarcast.app.chat.irc import IrcError, parse, unescape
from avatarcast.app.chat.message import ChatEvent, ChatMessage, Removal
from avatarcast.app.chat.twitch import ChatError, TwitchChat
from harness.irc_server import TwitchIrcServer

TOKEN = "abcdefghijklmnopqrstuvwxyz0123"
MSG = ("@badge-info=subscriber/8;badges=subscriber/6,premium/1;color=#1E90FF;"
       "display-name=Ana\\sB;emotes=;id=a1b2c3;mod=0;tmi-sent-ts=1764800000123;"
       "user-id=4242 :ana!ana@ana.tmi.twitch.tv PRIVMSG #show :Why is the sky blue?")
BITS = ("@badges=;bits=100;display-name=Bo;id=b-1;tmi-sent-ts=1764800001000;user-id=7 "
        ":bo!bo@bo.tmi.twitch.tv PRIVMSG #show :cheer100 Tell us a joke")
SUB = ("@badges=subscriber/0;display-name=Cy;id=c-1;login=cy;msg-id=resub;"
       "msg-param-sub-plan=1000;system-msg=Cy\\ssubscribed\\sfor\\s3\\smonths!;"
       "tmi-sent-ts=1764800002000;user-id=9 :tmi.twitch.tv USERNOTICE #show :Love the show")
RAID = ("@display-name=Di;id=d-1;login=di;msg-id=raid;user-id=5 :tmi.twitch.tv USERNOTICE "
        "#show")
CLEARMSG = "@login=ana;target-msg-id=a1b2c3 :tmi.twitch.tv CLEARMSG #show :Why is the sky blue?"
CLEARCHAT = "@ban-duration=600;target-user-id=7 :tmi.twitch.tv CLEARCHAT #show :bo"


def test_irc_lines_with_tags_parse() -> None:
    line = parse(MSG)
    assert line.command == "PRIVMSG" and line.params == ("#show", "Why is the sky blue?")
    assert line.tags["display-name"] == "Ana B" and line.nick == "ana"
    assert parse("PING :tmi.twitch.tv").trailing == "tmi.twitch.tv"
    assert unescape("a\\:b\\sc\\\\d\\") == "a;b c\\d"
    for bad in ("", "@only-tags", ":prefix-only", "x" * 20_000):
        with pytest.raises(IrcError):
            parse(bad)


def test_twitch_lines_become_chat_events() -> None:
    msg = twitch.to_event(parse(MSG))
    assert msg == ChatMessage(platform="twitch", id="a1b2c3", user="4242", display_name="Ana B",
                              text="Why is the sky blue?", at=1764800000.123,
                              badges=("subscriber/6", "premium/1"))
    bits = twitch.to_event(parse(BITS))
    assert isinstance(bits, ChatMessage) and (bits.kind, bits.amount, bits.currency) == (
        "paid", 100.0, "bits") and bits.text == "Tell us a joke"  # not its "cheer100"
    ps5 = twitch.to_event(parse(BITS.replace("cheer100 Tell us a joke",
                                             "Kappa50 Cheer50 Is a PS5 worth it?")))
    assert isinstance(ps5, ChatMessage) and ps5.text == "Is a PS5 worth it?"
    sub = twitch.to_event(parse(SUB))
    assert isinstance(sub, ChatMessage) and (sub.kind, sub.tier, sub.text) == (
        "subscription", "1000", "Love the show")
    assert twitch.to_event(parse(RAID)) is None
    assert twitch.to_event(parse(CLEARMSG)) == Removal("twitch", message_id="a1b2c3")
    assert twitch.to_event(parse(CLEARCHAT)) == Removal("twitch", user="7")
    assert twitch.to_event(parse(":tmi.twitch.tv CLEARCHAT #show")) == Removal("twitch")


async def _take(events: AsyncIterator[ChatEvent], n: int) -> list[ChatEvent]:
    out = []
    async with asyncio.timeout(20):
        while len(out) < n:
            out.append(await anext(events))
    return out


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(twitch, "BACKOFF_MIN_S", 0.05)
    monkeypatch.setattr(twitch, "IDLE_S", 0.5)
    monkeypatch.setattr(twitch, "PONG_S", 0.3)


def test_a_session_logs_in_answers_pings_and_reconnects(
    quick: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with TwitchIrcServer(token=TOKEN) as server:
            chat = TwitchChat("#Show", nick="AvatarBot", token=TOKEN, host="127.0.0.1",
                              port=server.port, tls=False)
            events = chat.events()
            reading = asyncio.ensure_future(_take(events, 1))
            await server.wait_joined(0)
            first = server.received[0]
            assert first[:4] == ["CAP REQ :twitch.tv/tags twitch.tv/commands",
                                 f"PASS oauth:{TOKEN}", "NICK avatarbot", "JOIN #show"]
            await server.send("PING :tmi.twitch.tv")
            await server.send(MSG)
            assert [e.id for e in await reading] == ["a1b2c3"]  # type: ignore[union-attr]
            await server.wait_line(0, "PONG :tmi.twitch.tv")
            # Dropped: back with the backoff, and on with the messages.
            reading = asyncio.ensure_future(_take(events, 1))
            server.drop()
            await server.wait_joined(1)
            await server.send(BITS)
            assert [e.id for e in await reading] == ["b-1"]  # type: ignore[union-attr]
            # The server asks: at once.
            reading = asyncio.ensure_future(_take(events, 1))
            await server.send(":tmi.twitch.tv RECONNECT")
            await server.wait_joined(2)
            await server.send(CLEARMSG)
            assert await reading == [Removal("twitch", message_id="a1b2c3")]
            # Silent: our own PING; a server that answers nothing is left and joined again.
            reading = asyncio.ensure_future(_take(events, 1))
            await server.wait_line(2, "PING :avatarcast", limit_s=5)
            await server.wait_joined(3, limit_s=5)
            await server.send(SUB)
            assert [e.id for e in await reading] == ["c-1"]  # type: ignore[union-attr]
            assert chat.connects == 4
            # A line over 64 KiB: that connection is left, the next one goes on.
            reading = asyncio.ensure_future(_take(events, 1))
            await server.send("@x=" + "y" * 70_000 + " :tmi.twitch.tv NOTICE #show :hi")
            await server.wait_joined(4, limit_s=5)
            await server.send(MSG)
            assert [e.id for e in await reading] == ["a1b2c3"]  # type: ignore[union-attr]
            await events.aclose()

    asyncio.run(run())
    assert TOKEN not in caplog.text


def test_a_refused_token_ends_with_a_clear_error(quick: None,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with TwitchIrcServer(token=TOKEN) as server:
            chat = TwitchChat("show", nick="bot", token="wrong-token-123456", host="127.0.0.1",
                              port=server.port, tls=False)
            with pytest.raises(ChatError, match="refused the login of bot"):
                await _take(chat.events(), 1)
            assert len(server.received) == 1  # not retried

    asyncio.run(run())
    assert "wrong-token-123456" not in caplog.text
