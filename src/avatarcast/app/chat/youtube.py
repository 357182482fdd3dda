"""YouTube Live chat by polling the Data API v3's liveChatMessages.list: messages, Super Chats
and Stickers (paid), memberships, and moderators' removals. It follows nextPageToken, never
calls sooner than pollingIntervalMillis or the daily quota allow, renews the OAuth access
token before it expires (and once when refused), backs off on rate limits, server errors and
network faults, sleeps through a spent quota until midnight Pacific, and raises only what
retrying cannot mend (the chat is gone, credentials refused). The API key goes in a header,
never a URL (httpx logs URLs); no secret reaches a log line, an exception or a repr."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from .message import ChatEvent, ChatMessage, Kind, Removal
from .twitch import ChatError

log = logging.getLogger(__name__)

LIST_COST = 5  # quota units per liveChatMessages.list call (videos.list: 1)
MAX_RESULTS = 2000  # the most a page holds (200..2000): a slow poll still misses nothing
TIMEOUT_S = 10.0  # each request
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
QUOTA_WAIT_MAX_S = 24 * 3600.0  # a spent quota is waited out until it resets, never longer
QUOTA_RESET_SLACK_S = 60.0  # and this long after midnight, for clocks that differ
REFRESH_EARLY_S = 60.0  # an access token is renewed this long before it runs out
DEFAULT_POLL_S = 5.0  # when a response names no pollingIntervalMillis
PACIFIC = ZoneInfo("America/Los_Angeles")  # where YouTube's daily quota starts over
QUOTA = {"quotaExceeded", "dailyLimitExceeded"}
RATE = {"rateLimitExceeded", "userRateLimitExceeded"}
GONE = {"liveChatEnded": "the live chat is no longer live",
        "liveChatNotFound": "no live chat has this id",
        "liveChatDisabled": "live chat is off for this broadcast",
        "forbidden": "these credentials may not read this live chat"}
PAID = {"superChatEvent": "superChatDetails", "superStickerEvent": "superStickerDetails"}
MEMBERSHIP = {"newSponsorEvent": ("newSponsorDetails", "memberLevelName"),
              "memberMilestoneChatEvent": ("memberMilestoneChatDetails", "memberLevelName"),
              "membershipGiftingEvent": ("membershipGiftingDetails", "giftMembershipsLevelName")}
BADGES = (("isChatOwner", "owner"), ("isChatModerator", "moderator"),
          ("isChatSponsor", "member"), ("isVerified", "verified"))


class _Retry(Exception):
    """Worth trying again after a backoff: a rate limit, a server error, a dropped network."""


class _QuotaSpent(Exception):
    """The project's daily quota is spent: nothing to do until it resets (midnight Pacific)."""


class YouTubeChat:
    """One broadcast's live chat, as events. live_chat_id or video_id: which chat (a video's
    active chat is looked up once, with videos.list). api_key, or client_id + client_secret +
    refresh_token (OAuth, a grant with a youtube scope): how to call, one of the two.
    base_url, token_url: the API and Google's token endpoint. daily_quota: the units a day
    this adapter may spend; a list call costs LIST_COST (5), so calls are never closer than
    86400 * 5 / daily_quota s, whatever pollingIntervalMillis allows: the default 10 000 (a
    new project's allocation) means a call every ~43 s, chat arriving in batches that far
    apart; a project granted more quota sets daily_quota to its share of it. max_results:
    messages a page (200..2000); timeout_s: each request's limit."""

    def __init__(self, *, live_chat_id: str | None = None, video_id: str | None = None,
                 api_key: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, refresh_token: str | None = None,
                 base_url: str = "https://www.googleapis.com/youtube/v3",
                 token_url: str = "https://oauth2.googleapis.com/token",
                 daily_quota: int = 10_000, max_results: int = MAX_RESULTS,
                 timeout_s: float = TIMEOUT_S) -> None:
        if bool(live_chat_id) == bool(video_id):
            raise ValueError("YouTubeChat: give live_chat_id or video_id (one of them)")
        oauth = (client_id, client_secret, refresh_token)
        if bool(api_key) == any(oauth) or not (api_key or all(oauth)):
            raise ValueError("YouTubeChat: give api_key, or all of client_id, client_secret "
                             "and refresh_token (OAuth), not both")
        if daily_quota <= 0 or not 200 <= max_results <= 2000:
            raise ValueError("YouTubeChat: daily_quota > 0 and max_results in 200..2000")
        self.live_chat_id, self.video_id = live_chat_id, video_id
        self._key, self._client_id = api_key, client_id
        self._client_secret, self._refresh_token = client_secret, refresh_token
        self._base, self._token_url = base_url.rstrip("/"), token_url
        self.min_interval_s = 86400 * LIST_COST / daily_quota
        self._daily_quota, self._max_results, self._timeout_s = daily_quota, max_results, timeout_s
        self._access: str | None = None
        self._access_until = 0.0  # monotonic: renew it from then on
        self._closed = asyncio.Event()
        self.polls = 0  # list calls answered
        self.refreshes = 0  # access tokens obtained

    def __repr__(self) -> str:
        auth = "api key" if self._key else "oauth"
        return (f"YouTubeChat(live_chat_id={self.live_chat_id!r}, video_id={self.video_id!r}, "
                f"auth={auth!r})")

    async def events(self) -> AsyncIterator[ChatEvent]:
        """The chat's events, oldest first, until the broadcast goes offline (the iterator
        ends) or aclose(); raises ChatError for what retrying cannot mend."""
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            page: str | None = None
            backoff, warned, wait = BACKOFF_MIN_S, False, 0.0
            while await self._pause(wait):
                try:
                    if self.live_chat_id is None:
                        self.live_chat_id = await self._lookup(client)
                    params: dict[str, str | int] = {
                        "liveChatId": self.live_chat_id, "part": "snippet,authorDetails",
                        "maxResults": self._max_results, **({"pageToken": page} if page else {})}
                    body = await self._get(client, "liveChat/messages", params)
                except _QuotaSpent as exc:
                    wait = min(quota_reset_in() + QUOTA_RESET_SLACK_S, QUOTA_WAIT_MAX_S)
                    if not warned:  # one line for the whole wait, not one per try
                        log.warning("youtube chat %s: the daily quota is spent (%s); waiting "
                                    "%.0f s, until it resets at midnight Pacific",
                                    self._name(), exc, wait)
                    warned = True
                    continue
                except _Retry as exc:
                    wait = max(backoff, self.min_interval_s)  # a failed call costs quota too
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    log.warning("youtube chat %s: %s; trying again in %.1f s", self._name(),
                                exc, wait)
                    continue
                if self.polls == 0:
                    log.info("youtube chat %s: reading, a call every %.1f s at least (%d quota "
                             "units a day)", self._name(), self.min_interval_s, self._daily_quota)
                backoff, warned = BACKOFF_MIN_S, False
                self.polls += 1
                page = body.get("nextPageToken") or page
                poll = body.get("pollingIntervalMillis")
                poll_s = poll / 1000 if isinstance(poll, int | float) and poll >= 0 else None
                wait = max(DEFAULT_POLL_S if poll_s is None else poll_s, self.min_interval_s)
                due = time.monotonic() + wait  # the consumer's time counts toward it
                for item in body.get("items") or ():
                    if (event := _event_or_none(item)) is not None:
                        yield event
                if body.get("offlineAt"):
                    log.info("youtube chat %s: the broadcast went offline at %s", self._name(),
                             body["offlineAt"])
                    return
                wait = due - time.monotonic()

    async def aclose(self) -> None:
        """Ends events(): a wait in progress at once, a request in flight within its timeout."""
        self._closed.set()

    async def _pause(self, seconds: float) -> bool:
        """Wait, unless closed meanwhile; False once closed."""
        if seconds > 0 and not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._closed.wait()
        return not self._closed.is_set()

    async def _lookup(self, client: httpx.AsyncClient) -> str:
        body = await self._get(client, "videos",
                               {"part": "liveStreamingDetails", "id": self.video_id or ""})
        items = body.get("items")
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            raise ChatError(f"youtube has no video {self.video_id!r}: check the video id")
        chat = (items[0].get("liveStreamingDetails") or {}).get("activeLiveChatId")
        if not isinstance(chat, str) or not chat:
            raise ChatError(f"youtube video {self.video_id} has no active live chat: it is not "
                            "live now, or its chat is turned off")
        log.info("youtube video %s: its live chat is %s", self.video_id, chat)
        return chat

    async def _get(self, client: httpx.AsyncClient, path: str,
                   params: dict[str, str | int]) -> dict[str, Any]:
        """One call (and once more after renewing a refused access token)."""
        r = await self._send(client, path, params)
        if r.status_code == 401 and self._key is None:
            log.info("youtube: the access token was refused; renewing it")
            self._access = None
            r = await self._send(client, path, params)
        if not r.is_success:
            raise self._failure(r)
        if (body := _json(r)) is None:
            raise _Retry(f"{r.status_code} with a body that is not a JSON object")
        return body

    async def _send(self, client: httpx.AsyncClient, path: str,
                    params: dict[str, str | int]) -> httpx.Response:
        headers = await self._auth(client)
        try:
            return await client.get(f"{self._base}/{path}", params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise _Retry(_describe(exc)) from None

    def _failure(self, r: httpx.Response) -> Exception:
        reason, message = _google_error(r)
        what = f"{r.status_code} {reason}".strip()
        if reason in QUOTA:
            return _QuotaSpent(what)
        if reason in RATE or r.status_code in (408, 429) or r.status_code >= 500:
            return _Retry(what)
        if reason in GONE:
            return ChatError(f"youtube live chat {self._name()}: {reason} ({GONE[reason]})")
        if r.status_code == 401:
            auth = "API key" if self._key else "OAuth access token"
            return ChatError(f"youtube refused the {auth} ({what}); check the credentials")
        return ChatError(self._scrub(f"youtube answered {what}: {message}"))

    async def _auth(self, client: httpx.AsyncClient) -> dict[str, str]:
        if self._key is not None:
            return {"X-Goog-Api-Key": self._key}
        if self._access is None or time.monotonic() >= self._access_until:
            await self._refresh(client)
        return {"Authorization": f"Bearer {self._access}"}

    async def _refresh(self, client: httpx.AsyncClient) -> None:
        form = {"client_id": self._client_id or "", "client_secret": self._client_secret or "",
                "refresh_token": self._refresh_token or "", "grant_type": "refresh_token"}
        try:
            r = await client.post(self._token_url, data=form)
        except httpx.HTTPError as exc:
            raise _Retry(f"renewing the access token: {_describe(exc)}") from None
        body = _json(r) or {}
        token = body.get("access_token")
        if r.is_success and isinstance(token, str) and token:
            given = body.get("expires_in")
            lifetime = float(given) if isinstance(given, int | float) and given > 0 else 3600.0
            self._access = token
            self._access_until = time.monotonic() + max(lifetime - REFRESH_EARLY_S, lifetime / 2)
            self.refreshes += 1
            log.debug("youtube: a new access token, good for %.0f s", lifetime)
            return
        if r.status_code >= 500 or r.status_code in (408, 429):
            raise _Retry(f"renewing the access token: {r.status_code}")
        error = f"{r.status_code} {body.get('error') or ''} {body.get('error_description') or ''}"
        raise ChatError(self._scrub(f"google refused the OAuth refresh token ({error.strip()}); "
                                    "authorize the app again for a new one"))

    def _scrub(self, text: str) -> str:
        """Text from a server, with any of our secrets masked (belt and braces)."""
        for secret in (self._key, self._client_secret, self._refresh_token, self._access):
            if secret:
                text = text.replace(secret, "***")
        return text[:300]

    def _name(self) -> str:
        return self.live_chat_id or f"of video {self.video_id}"


def to_event(item: Any) -> ChatEvent | None:
    """A chat event out of one liveChatMessage resource (None: a type not read); raises
    KeyError, TypeError or ValueError on one that is malformed."""
    s = item["snippet"]
    kind = s["type"]
    if kind == "messageDeletedEvent":
        return Removal("youtube", message_id=_str(s["messageDeletedDetails"]["deletedMessageId"]))
    if kind == "userBannedEvent":
        return Removal("youtube",
                       user=_str(s["userBannedDetails"]["bannedUserDetails"]["channelId"]))
    if kind == "textMessageEvent":
        text = (s.get("textMessageDetails") or {}).get("messageText") or s["displayMessage"]
        return _message(item, _str(text))
    if kind in PAID:
        d = s[PAID[kind]]
        text = d.get("userComment") or (d.get("superStickerMetadata") or {}).get("altText")
        return _message(item, str(text or ""), "paid", float(d["amountMicros"]) / 1_000_000,
                        _str(d["currency"]), None if d.get("tier") is None else str(d["tier"]))
    if kind in MEMBERSHIP:
        key, level = MEMBERSHIP[kind]
        d = s[key]
        return _message(item, str(d.get("userComment") or ""), "membership",
                        tier=str(d[level]) if d.get(level) else None)
    return None


def _message(item: Any, text: str, kind: Kind = "message", amount: float | None = None,
             currency: str | None = None, tier: str | None = None) -> ChatMessage:
    a = item["authorDetails"]
    return ChatMessage(
        platform="youtube", id=_str(item["id"]), user=_str(a["channelId"]),
        display_name=str(a.get("displayName") or a["channelId"]), text=text,
        at=_seconds(item["snippet"]["publishedAt"]), kind=kind, amount=amount,
        currency=currency, tier=tier, badges=tuple(b for flag, b in BADGES if a.get(flag) is True))


def _event_or_none(item: Any) -> ChatEvent | None:
    try:
        return to_event(item)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        ident = item.get("id") if isinstance(item, dict) else None
        log.debug("youtube chat: skipped a malformed item %r (%s)", ident, _describe(exc))
        return None


def quota_reset_in(now: float | None = None) -> float:
    """Seconds from `now` (Unix; default: this moment) until YouTube's daily quota resets:
    the next midnight in America/Los_Angeles (the offset changes with daylight saving)."""
    t = time.time() if now is None else now
    today = datetime.fromtimestamp(t, PACIFIC).date()
    midnight = datetime.combine(today + timedelta(days=1), clock(0), tzinfo=PACIFIC)
    return midnight.timestamp() - t


def _seconds(stamp: Any) -> float:
    """RFC 3339 (…Z or …+00:00, any fraction) to Unix seconds."""
    when = datetime.fromisoformat(_str(stamp))
    if when.tzinfo is None:
        raise ValueError(f"a time without its offset: {stamp!r}")
    return when.timestamp()


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a non-empty string: {value!r}")
    return value


def _json(r: httpx.Response) -> dict[str, Any] | None:
    with contextlib.suppress(ValueError):
        if isinstance(body := r.json(), dict):
            return body
    return None


def _google_error(r: httpx.Response) -> tuple[str, str]:
    """(reason, message) out of Google's error shape: {"error": {"code", "message",
    "errors": [{"domain", "reason", "message"}], "status"}}."""
    err = (_json(r) or {}).get("error")
    if not isinstance(err, dict):
        return "", r.reason_phrase
    errors = err.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else {}
    reason = first.get("reason") if isinstance(first, dict) else None
    return str(reason or err.get("status") or ""), str(err.get("message") or "")[:200]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
