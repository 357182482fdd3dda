"""YouTube Live chat against a local server speaking the Data API v3 over real HTTP: every
kind of item comes out as the right ChatMessage or Removal (a malformed one is skipped);
pages are followed by their tokens, and calls are never closer than pollingIntervalMillis or
the daily quota allows; a spent quota is waited out (and aclose ends the wait); rate limits,
server errors and stalls are backed off with nothing lost; an access token is renewed before
it runs out and when refused; a dead refresh token, a chat that is gone and a video without
a live chat are ChatErrors; offlineAt ends the iterator; no secret reaches a log line."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from avatarcast.app.chat import youtube
from avatarcast.app.chat.message import ChatEvent, ChatMessage, Removal
from avatarcast.app.chat.twitch import ChatError
from avatarcast.app.chat.youtube import YouTubeChat, quota_reset_in
from harness import youtube_server as yt
from harness.youtube_server import Seen, YouTubeServer

OAUTH = {"client_id": yt.CLIENT_ID, "client_secret": yt.CLIENT_SECRET,
         "refresh_token": yt.REFRESH_TOKEN}
AT = datetime(2026, 12, 3, 18, 0, 0, 250000, tzinfo=UTC).timestamp()


def quota_for(floor_s: float) -> int:
    """The daily quota whose floor between two list calls is `floor_s`."""
    return round(86400 * youtube.LIST_COST / floor_s)


def _chat(server: YouTubeServer, **kw: Any) -> YouTubeChat:
    if "video_id" not in kw:
        kw.setdefault("live_chat_id", yt.CHAT_ID)
    if "client_id" not in kw:
        kw.setdefault("api_key", yt.KEY)
    kw.setdefault("daily_quota", quota_for(0.01))
    return YouTubeChat(base_url=server.base_url, token_url=server.token_url, **kw)


async def _take(events: AsyncIterator[ChatEvent], n: int, limit_s: float = 10) -> list[ChatEvent]:
    out: list[ChatEvent] = []
    async with asyncio.timeout(limit_s):
        while len(out) < n:
            out.append(await anext(events))
    return out


async def _until(done: Callable[[], bool], limit_s: float = 10) -> None:
    """Until `done()`: the server's thread has no event of this loop to set, so a poll."""
    async with asyncio.timeout(limit_s):
        while not done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def _ids(events: list[ChatEvent]) -> list[str]:
    return [e.id if isinstance(e, ChatMessage) else repr(e) for e in events]


def _gaps(calls: list[Seen]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(calls)]


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(youtube, "BACKOFF_MIN_S", 0.1)
    monkeypatch.setattr(youtube, "BACKOFF_MAX_S", 0.4)
    monkeypatch.setattr(youtube, "QUOTA_WAIT_MAX_S", 0.3)


async def test_every_kind_of_item_becomes_its_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="avatarcast.app.chat.youtube")
    boss = yt.author("UCboss0000000000000000000", "Boss", owner=True, moderator=True,
                     member=True, verified=True)
    bo, cy = yt.author("UCbo", "Bo", member=True), yt.author("UCcy", "Cy")
    bad_time = yt.text_message("x1", "hi", at="yesterday")
    no_amount = yt.super_chat("x2", 1, "USD", "hi")
    del no_amount["snippet"]["superChatDetails"]["amountMicros"]
    no_author = yt.text_message("x3", "hi")
    del no_author["authorDetails"]
    with YouTubeServer() as server:
        server.serve(
            yt.text_message("m1", "Why is the sky blue?", by=boss),
            yt.super_chat("m2", 5_000_000, "USD", "Tell us a joke", tier=2, by=bo),
            yt.super_sticker("m3", 1_990_000, "EUR", "A dancing cat", tier=1, by=cy),
            yt.new_sponsor("m4", "Gold", by=cy, at="2026-12-03T18:00:01.123456789Z"),
            yt.member_milestone("m5", "Gold", 12, "A year already!", by=bo),
            yt.membership_gifting("m6", 5, "Silver", by=bo),
            yt.item("p1", "pollEvent", "pollDetails", {"status": "active"}),  # not read
            bad_time, no_amount, no_author, "not an item",  # type: ignore[arg-type]
            yt.message_deleted("d1", "m1"),
            yt.user_banned("b1", "UCcy", "Cy"),
            yt.text_message("m7", "still here"))
        chat = _chat(server)
        events = chat.events()
        got = await _take(events, 9)
        await chat.aclose()
        assert [e async for e in events] == []
    msg = functools.partial(ChatMessage, "youtube", at=AT)
    assert got == [
        msg(id="m1", user="UCboss0000000000000000000", display_name="Boss",
            text="Why is the sky blue?", badges=("owner", "moderator", "member", "verified")),
        msg(id="m2", user="UCbo", display_name="Bo", text="Tell us a joke", kind="paid",
            amount=5.0, currency="USD", tier="2", badges=("member",)),
        msg(id="m3", user="UCcy", display_name="Cy", text="A dancing cat", kind="paid",
            amount=1.99, currency="EUR", tier="1"),
        msg(id="m4", user="UCcy", display_name="Cy", text="", kind="membership", tier="Gold",
            at=datetime(2026, 12, 3, 18, 0, 1, 123456, tzinfo=UTC).timestamp()),
        msg(id="m5", user="UCbo", display_name="Bo", text="A year already!", kind="membership",
            tier="Gold", badges=("member",)),
        msg(id="m6", user="UCbo", display_name="Bo", text="", kind="membership", tier="Silver",
            badges=("member",)),
        Removal("youtube", message_id="m1"),
        Removal("youtube", user="UCcy"),
        msg(id="m7", user="UCana00000000000000000000", display_name="Ana", text="still here"),
    ]
    skipped = [r for r in caplog.records if "skipped a malformed item" in r.getMessage()]
    assert len(skipped) == 4


@pytest.mark.parametrize(("poll_ms", "floor_s"), [(250, 0.05), (50, 0.25)])
async def test_pages_follow_their_tokens_and_calls_keep_their_interval(
        poll_ms: int, floor_s: float) -> None:
    with YouTubeServer(polling_interval_ms=poll_ms) as server:
        for name in ("a", "b", "c"):
            server.serve(yt.text_message(name, f"message {name}"))
        chat = _chat(server, daily_quota=quota_for(floor_s))
        events = chat.events()
        assert _ids(await _take(events, 3)) == ["a", "b", "c"]
        reading = asyncio.ensure_future(_take(events, 1))  # empty pages from here on
        await _until(lambda: len(server.calls()) >= 5)
        reading.cancel()
        calls = server.calls()
    assert server.page_token_errors == []
    assert "pageToken" not in calls[0].query
    assert [c.query["pageToken"] for c in calls[1:4]] == [
        "GLoc4lPageT0ken0001", "GLoc4lPageT0ken0002", "GLoc4lPageT0ken0003"]
    assert calls[0].query["part"] == "snippet,authorDetails"
    assert calls[0].query["maxResults"] == "2000"
    # Never closer than the larger of the two (10 ms: the server thread's own jitter).
    assert min(_gaps(calls[:5])) >= max(poll_ms / 1000, floor_s) - 0.01


def test_the_quota_floor_follows_the_daily_quota() -> None:
    chat = YouTubeChat(live_chat_id="c", api_key="k")
    assert chat.min_interval_s == pytest.approx(43.2)  # 86400 s * 5 units / 10 000 units
    assert YouTubeChat(live_chat_id="c", api_key="k", daily_quota=200_000).min_interval_s == (
        pytest.approx(2.16))


async def test_a_spent_quota_is_waited_out_with_one_warning(
        quick: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="avatarcast.app.chat.youtube")
    with YouTubeServer() as server:
        server.serve(yt.text_message("a", "before"))
        server.fail("quotaExceeded", 3)
        server.serve(yt.text_message("b", "after"))
        chat = _chat(server)
        events = chat.events()
        assert _ids(await _take(events, 2)) == ["a", "b"]
        await chat.aclose()
        calls = server.calls()
    assert [c.status for c in calls[:5]] == [200, 403, 403, 403, 200]
    assert min(_gaps(calls[1:5])) >= 0.3 - 0.01  # QUOTA_WAIT_MAX_S, not the 0.1 s poll
    assert {c.query.get("pageToken") for c in calls[1:5]} == {"GLoc4lPageT0ken0001"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "quota is spent" in warnings[0].getMessage()


async def test_aclose_ends_a_quota_wait_at_once() -> None:
    with YouTubeServer() as server:
        server.fail("quotaExceeded")
        chat = _chat(server)
        events = chat.events()
        reading = asyncio.ensure_future(_take(events, 1))
        await _until(lambda: len(server.calls()) == 1 and server.calls()[0].status == 403)
        await asyncio.sleep(0.1)  # into the wait (until midnight Pacific, or a day)
        began = time.monotonic()
        await chat.aclose()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reading, 2)
        assert time.monotonic() - began < 1
        assert len(server.calls()) == 1


def test_the_quota_resets_at_midnight_in_los_angeles() -> None:
    def at(month: int, day: int, hour: int, minute: int, second: int = 0) -> float:
        return datetime(2026, month, day, hour, minute, second, tzinfo=UTC).timestamp()

    assert quota_reset_in(at(12, 4, 7, 59)) == 60  # PST: midnight is 08:00 UTC
    assert quota_reset_in(at(7, 2, 6, 59)) == 60  # PDT: 07:00 UTC
    assert quota_reset_in(at(12, 4, 8, 0, 1)) == 86399
    assert 0 < quota_reset_in() <= 25 * 3600


async def test_rate_limits_server_errors_and_stalls_back_off_and_lose_nothing(
        quick: None, caplog: pytest.LogCaptureFixture) -> None:
    with YouTubeServer(stall_s=1.0) as server:
        server.serve(yt.text_message("a", "one"))
        server.fail("backendError", 2)
        server.serve(yt.text_message("b", "two"))
        server.fail("rateLimitExceeded")
        server.fail("stall")
        server.serve(yt.text_message("c", "three"))
        chat = _chat(server, timeout_s=0.3)
        events = chat.events()
        assert _ids(await _take(events, 3)) == ["a", "b", "c"]
        await chat.aclose()
        calls = server.calls()
    statuses = [c.status for c in calls]
    assert statuses[:5] == [200, 500, 500, 200, 403] and statuses[6] == 200
    assert server.page_token_errors == []
    gaps = _gaps(calls)
    assert gaps[1] >= 0.1 - 0.01 and gaps[2] >= 0.2 - 0.01  # 0.1 s, then doubled
    assert 0.1 - 0.01 <= gaps[4] < 0.3  # after a success the backoff starts over (not 0.4)
    assert gaps[5] >= 0.3 + 0.2 - 0.01  # the 0.3 s timeout, then the doubled backoff
    assert sum("trying again" in r.getMessage() for r in caplog.records) == 4


async def test_a_refused_access_token_is_renewed_and_the_same_page_asked_again() -> None:
    with YouTubeServer() as server:
        server.serve(yt.text_message("a", "one"))
        server.fail("authError")
        server.serve(yt.text_message("b", "two"))
        chat = _chat(server, **OAUTH)
        events = chat.events()
        assert _ids(await _take(events, 2)) == ["a", "b"]
        await chat.aclose()
        calls = server.calls()
    assert [c.status for c in calls[:3]] == [200, 401, 200]
    assert calls[1].query["pageToken"] == calls[2].query["pageToken"] == "GLoc4lPageT0ken0001"
    assert {c.auth for c in calls} == {"bearer"}
    assert len(server.issued) == chat.refreshes == 2
    assert server.page_token_errors == []


async def test_the_access_token_is_renewed_before_it_runs_out() -> None:
    with YouTubeServer(token_lifetime_s=1, polling_interval_ms=150) as server:
        chat = _chat(server, **OAUTH)
        events = chat.events()
        reading = asyncio.ensure_future(_take(events, 1))
        await _until(lambda: len(server.calls()) >= 11)
        reading.cancel()
        calls = server.calls()
    assert {c.status for c in calls} == {200}  # never refused: renewed before it expired
    assert len(server.issued) >= 3


async def test_a_refused_refresh_token_or_client_is_a_chat_error(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    dead, wrong = "1//0dead-refresh-token-abcdef0123", "GOCSPX-wrong-secret-abcdef0123"
    with YouTubeServer() as server:
        chat = _chat(server, **{**OAUTH, "refresh_token": dead})
        with pytest.raises(ChatError, match=r"refused the OAuth refresh token.*invalid_grant") \
                as dead_one:
            await _take(chat.events(), 1)
        assert server.refused_refreshes == 1
        chat = _chat(server, **{**OAUTH, "client_secret": wrong})
        with pytest.raises(ChatError, match="invalid_client") as refused:
            await _take(chat.events(), 1)
        assert server.calls() == []  # no list call went out, and nothing was retried
        assert len(server.calls(yt.TOKEN)) == 2
    assert dead not in caplog.text and wrong not in caplog.text
    for text in (str(dead_one.value), str(refused.value)):
        assert dead not in text and wrong not in text and yt.CLIENT_SECRET not in text


@pytest.mark.parametrize("reason", ["liveChatEnded", "liveChatNotFound", "liveChatDisabled",
                                    "forbidden"])
async def test_a_chat_that_is_gone_is_a_chat_error(reason: str) -> None:
    with YouTubeServer() as server:
        server.serve(yt.text_message("a", "last words"))
        server.fail(reason)
        chat = _chat(server)
        events = chat.events()
        assert _ids(await _take(events, 1)) == ["a"]
        with pytest.raises(ChatError, match=f"youtube live chat {yt.CHAT_ID}: {reason}"):
            await _take(events, 1)
        await asyncio.sleep(0.2)
        assert len(server.calls()) == 2  # not retried


async def test_offline_at_ends_the_iterator(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="avatarcast.app.chat.youtube")
    with YouTubeServer() as server:
        server.serve(yt.text_message("a", "bye"), yt.text_message("b", "see you"))
        server.go_offline()
        chat = _chat(server)
        async with asyncio.timeout(5):
            got = [e async for e in chat.events()]
        assert _ids(got) == ["a", "b"]
        assert len(server.calls()) == 1
    assert "went offline at 2026-12-03T19:00:00Z" in caplog.text


async def test_a_video_id_is_looked_up_to_its_live_chat() -> None:
    with YouTubeServer() as server:
        server.serve(yt.text_message("a", "hello"))
        chat = _chat(server, video_id=yt.VIDEO_ID)
        events = chat.events()
        assert _ids(await _take(events, 1)) == ["a"]
        await chat.aclose()
        lookup = server.requests[0]
        assert (lookup.path, lookup.query, lookup.auth) == (
            yt.VIDEOS, {"part": "liveStreamingDetails", "id": yt.VIDEO_ID}, "key header")
        assert server.calls()[0].query["liveChatId"] == chat.live_chat_id == yt.CHAT_ID
        for video, says in [(yt.OFFLINE_VIDEO_ID, "has no active live chat"),
                            ("noSuchVide0", "has no video 'noSuchVide0'")]:
            with pytest.raises(ChatError, match=says):
                await _take(_chat(server, video_id=video).events(), 1)
        assert len(server.calls()) == 1


async def test_secrets_never_reach_logs_errors_or_reprs(
        quick: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "avatarcast"):
        caplog.set_level(logging.DEBUG, logger=name)
    texts: list[str] = []
    with YouTubeServer() as server:
        server.serve(yt.text_message("a", "one"))
        server.fail("backendError")
        server.serve(yt.text_message("b", "two"))
        server.fail("authError")
        server.serve(yt.text_message("c", "three"))
        server.fail("liveChatEnded")
        keyed = _chat(server)
        assert _ids(await _take(keyed.events(), 2)) == ["a", "b"]
        oauth = _chat(server, **OAUTH)
        events = oauth.events()
        assert _ids(await _take(events, 1)) == ["c"]
        with pytest.raises(ChatError) as ended:
            await _take(events, 1)
        bad_key = _chat(server, api_key="AIzaSyWrong-key-abcdefghijklmnop")
        with pytest.raises(ChatError) as refused:
            await _take(bad_key.events(), 1)
        texts += [str(ended.value), str(refused.value), repr(keyed), repr(oauth),
                  repr(bad_key)]
        secrets = [yt.KEY, yt.CLIENT_SECRET, yt.REFRESH_TOKEN,
                   "AIzaSyWrong-key-abcdefghijklmnop", *server.issued]
        requests = list(server.requests)
    assert len(secrets) == 6  # two access tokens were issued, and both are checked
    assert "HTTP Request: GET" in caplog.text  # httpx's own lines were captured
    assert "send_request_headers" in caplog.text  # and httpcore's
    texts.append(caplog.text)
    for secret in secrets:
        assert not any(secret in text for text in texts), secret
    assert {r.auth for r in requests} == {"key header", "bearer", "none"}  # none: /token
    assert not any("key" in r.query for r in requests)


def test_construction_refuses_what_cannot_work() -> None:
    for kw in [{"api_key": "k"},  # no chat
               {"live_chat_id": "c", "video_id": "v", "api_key": "k"},
               {"live_chat_id": "c"},  # no credentials
               {"live_chat_id": "c", "api_key": "k", **OAUTH},
               {"live_chat_id": "c", "client_id": "i", "client_secret": "s"},
               {"live_chat_id": "c", "api_key": "k", "daily_quota": 0},
               {"live_chat_id": "c", "api_key": "k", "max_results": 100}]:
        with pytest.raises(ValueError, match="YouTubeChat: "):
            YouTubeChat(**kw)  # type: ignore[arg-type]
    shown = repr(YouTubeChat(video_id="v", client_id=yt.CLIENT_ID,
                             client_secret=yt.CLIENT_SECRET, refresh_token=yt.REFRESH_TOKEN))
    assert shown == "YouTubeChat(live_chat_id=None, video_id='v', auth='oauth')"
