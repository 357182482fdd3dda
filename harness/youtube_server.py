"""A local server speaking the YouTube Data API v3 as the live chat adapter uses it, for the
tests: liveChatMessages.list (GET /youtube/v3/liveChat/messages) serving a script of pages
and faults, each page with its nextPageToken and pollingIntervalMillis; videos.list
(liveStreamingDetails.activeLiveChatId); and Google's OAuth token endpoint (the
refresh_token grant, access tokens that expire). It records every request (when, path,
query, how it was authorized) and every pageToken that was not the one it gave last, and
answers errors in Google's JSON shape. Builders of liveChatMessage resources of each type are
at the end. Runs on a thread of its own, so a daemon process can use it too."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .services import free_port
from .threadserver import ThreadedApp

KEY = "AIzaSyLocal-key-0123456789abcdefghijk"
CLIENT_ID = "1234567890-local.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-local-client-secret-0123"
REFRESH_TOKEN = "1//0local-refresh-token-0123456789abcdef"
CHAT_ID = "KicKGFVDbG9jYWwtY2hhbm5lbC0wMDAwMDAwMBILbG9jYWwtdmlkZW8"
VIDEO_ID = "loc4lVide0x"
OFFLINE_VIDEO_ID = "pastVide0xx"  # a video whose broadcast has no active live chat
AT = "2026-12-03T18:00:00.250000+00:00"
MESSAGES = "/youtube/v3/liveChat/messages"
VIDEOS = "/youtube/v3/videos"
TOKEN = "/token"
# What `fail` can script: Google's answer for each (status, domain, message).
FAULTS = {
    "quotaExceeded": (403, "youtube.quota", "The request cannot be completed because you "
                      "have exceeded your quota."),
    "rateLimitExceeded": (403, "youtube.liveChat", "The request was sent too quickly after "
                          "the previous request."),
    "liveChatEnded": (403, "youtube.liveChat", "The specified live chat is no longer live."),
    "liveChatDisabled": (403, "youtube.liveChat", "Live chat is not enabled for the specified "
                         "broadcast."),
    "forbidden": (403, "youtube.liveChat", "You don't have the permissions required to "
                  "retrieve messages for the specified live chat."),
    "liveChatNotFound": (404, "youtube.liveChat", "The live chat that you are trying to "
                         "retrieve cannot be found."),
    # And every access token issued so far stops working: only a renewed one gets through.
    "authError": (401, "global", "Invalid Credentials"),
    "backendError": (500, "global", "Backend Error"),
    # Answers nothing for `stall_s`, then a 503 (a client with a shorter timeout gave up).
    "stall": (503, "global", "The service is currently unavailable."),
}


@dataclass
class Seen:
    at: float  # time.monotonic() when it arrived
    method: str
    path: str
    query: dict[str, str]
    auth: str  # "key header", "key in url", "bearer", "none"
    status: int = 0


@dataclass
class YouTubeServer(ThreadedApp):
    port: int = field(default_factory=free_port)
    api_key: str = KEY
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    refresh_token: str = REFRESH_TOKEN
    live_chat_id: str = CHAT_ID
    videos: dict[str, str | None] = field(
        default_factory=lambda: {VIDEO_ID: CHAT_ID, OFFLINE_VIDEO_ID: None})
    polling_interval_ms: int = 100
    token_lifetime_s: int = 3600
    stall_s: float = 1.0
    offline_at: str | None = None  # set: every page says the broadcast went offline then
    # What the next list calls get, in order: a page (a list of items) or a fault's name;
    # once empty, an empty page.
    script: deque[list[dict[str, Any]] | str] = field(default_factory=deque)
    requests: list[Seen] = field(default_factory=list)
    page_token_errors: list[tuple[str | None, str | None]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # access tokens, in order
    refused_refreshes: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/youtube/v3"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TOKEN}"

    def serve(self, *items: dict[str, Any]) -> None:
        """Queue one page of these items."""
        self.script.append(list(items))

    def fail(self, reason: str, times: int = 1) -> None:
        """Queue `times` answers of this fault (a key of FAULTS), after what is queued."""
        if reason not in FAULTS:
            raise ValueError(f"no such fault: {reason}")
        self.script.extend([reason] * times)

    def go_offline(self, at: str = "2026-12-03T19:00:00Z") -> None:
        self.offline_at = at

    def calls(self, path: str = MESSAGES) -> list[Seen]:
        return [r for r in list(self.requests) if r.path == path]

    def routes(self, app: web.Application) -> None:
        self._expiry: dict[str, float] = {}  # access token -> monotonic time it expires
        self._revoked: set[str] = set()
        self._pages = 0
        self._next_token: str | None = None  # the pageToken the next call should carry
        app.router.add_get(MESSAGES, self._messages)
        app.router.add_get(VIDEOS, self._videos)
        app.router.add_post(TOKEN, self._token)

    def __enter__(self) -> YouTubeServer:
        super().__enter__()
        return self

    def _record(self, request: web.Request) -> Seen:
        if "key" in request.query:
            auth = "key in url"
        elif "X-Goog-Api-Key" in request.headers:
            auth = "key header"
        elif request.headers.get("Authorization", "").startswith("Bearer "):
            auth = "bearer"
        else:
            auth = "none"
        seen = Seen(time.monotonic(), request.method, request.path, dict(request.query), auth)
        self.requests.append(seen)
        return seen

    def _denied(self, request: web.Request) -> web.Response | None:
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            token = bearer.removeprefix("Bearer ")
            if token in self._revoked or time.monotonic() >= self._expiry.get(token, 0.0):
                return error(401, "global", "authError", "Invalid Credentials",
                             "UNAUTHENTICATED")
            return None
        key = request.headers.get("X-Goog-Api-Key") or request.query.get("key")
        if key is None:
            return error(403, "global", "forbidden", "The request is missing a valid API key.",
                         "PERMISSION_DENIED")
        if key != self.api_key:
            return error(400, "global", "badRequest",
                         "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
        return None

    async def _messages(self, request: web.Request) -> web.Response:
        seen = self._record(request)
        answer = self._denied(request)
        if answer is None:  # (a Response is a mapping: an empty one is falsy)
            answer = await self._page(request)
        seen.status = answer.status
        return answer

    async def _page(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("liveChatId") != self.live_chat_id:
            return error(404, "youtube.liveChat", "liveChatNotFound",
                         "The live chat that you are trying to retrieve cannot be found.")
        parts = set(q.get("part", "").split(","))
        max_results = q.get("maxResults", "500")
        if not parts <= {"id", "snippet", "authorDetails"} or not (
                max_results.isdigit() and 200 <= int(max_results) <= 2000):
            return error(400, "youtube.parameter", "invalidValue", "Invalid part or maxResults")
        if q.get("pageToken") != self._next_token:
            self.page_token_errors.append((self._next_token, q.get("pageToken")))
        entry = self.script.popleft() if self.script else []
        if isinstance(entry, str):
            if entry == "authError":
                self._revoked.update(self.issued)
            elif entry == "stall":
                await asyncio.sleep(self.stall_s)
            status, domain, message = FAULTS[entry]
            return error(status, domain, entry, message)
        self._pages += 1
        self._next_token = f"GLoc4lPageT0ken{self._pages:04d}"
        body: dict[str, Any] = {
            "kind": "youtube#liveChatMessageListResponse", "etag": f"etag-{self._pages}",
            "nextPageToken": self._next_token, "pollingIntervalMillis": self.polling_interval_ms,
            "pageInfo": {"totalResults": len(entry), "resultsPerPage": len(entry)},
            "items": entry}
        if self.offline_at:
            body["offlineAt"] = self.offline_at
        return web.json_response(body)

    async def _videos(self, request: web.Request) -> web.Response:
        seen = self._record(request)
        answer = self._denied(request)
        if answer is None:
            vid = request.query.get("id", "")
            items = []
            if vid in self.videos:
                details: dict[str, str] = {"actualStartTime": "2026-12-03T17:00:00Z"}
                if (chat := self.videos[vid]) is not None:
                    details["activeLiveChatId"] = chat
                else:
                    details["actualEndTime"] = "2026-12-03T17:30:00Z"
                items.append({"kind": "youtube#video", "etag": "e", "id": vid,
                              "liveStreamingDetails": details})
            answer = web.json_response({"kind": "youtube#videoListResponse", "etag": "e",
                                        "items": items, "pageInfo": {
                                            "totalResults": len(items),
                                            "resultsPerPage": len(items)}})
        seen.status = answer.status
        return answer

    async def _token(self, request: web.Request) -> web.Response:
        seen = self._record(request)
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            answer = _oauth_error(400, "unsupported_grant_type", "Invalid grant_type")
        elif form.get("client_id") != self.client_id or (
                form.get("client_secret") != self.client_secret):
            answer = _oauth_error(401, "invalid_client", "Unauthorized")
        elif form.get("refresh_token") != self.refresh_token:
            self.refused_refreshes += 1
            answer = _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        else:
            token = f"ya29.local{len(self.issued) + 1}-{secrets.token_urlsafe(24)}"
            self.issued.append(token)
            self._expiry[token] = time.monotonic() + self.token_lifetime_s
            answer = web.json_response({
                "access_token": token, "expires_in": self.token_lifetime_s,
                "scope": "https://www.googleapis.com/auth/youtube.readonly",
                "token_type": "Bearer"})
        seen.status = answer.status
        return answer


def error(status: int, domain: str, reason: str, message: str,
          rpc_status: str | None = None) -> web.Response:
    """Google's JSON error: {"error": {"code", "message", "errors": [...], "status"}}."""
    body: dict[str, Any] = {"code": status, "message": message,
                            "errors": [{"message": message, "domain": domain, "reason": reason}]}
    body["status"] = rpc_status or {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
                                    403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                                    500: "INTERNAL", 503: "UNAVAILABLE"}.get(status, "UNKNOWN")
    return web.json_response({"error": body}, status=status)


def _oauth_error(status: int, code: str, description: str) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)


# liveChatMessage resources, in the API's shape.

def author(channel_id: str = "UCana00000000000000000000", name: str = "Ana", *,
           owner: bool = False, moderator: bool = False, member: bool = False,
           verified: bool = False) -> dict[str, Any]:
    return {"channelId": channel_id, "channelUrl": f"http://www.youtube.com/channel/{channel_id}",
            "displayName": name, "profileImageUrl": "https://yt3.ggpht.com/local=s88",
            "isVerified": verified, "isChatOwner": owner, "isChatSponsor": member,
            "isChatModerator": moderator}


MODERATOR = author("UCmod00000000000000000000", "Mo", moderator=True)


def item(id: str, type: str, details_key: str | None = None,
         details: dict[str, Any] | None = None, *, by: dict[str, Any] | None = None,
         at: str = AT, display: str = "") -> dict[str, Any]:
    by = by or author()
    snippet: dict[str, Any] = {"type": type, "liveChatId": CHAT_ID,
                               "authorChannelId": by["channelId"], "publishedAt": at,
                               "hasDisplayContent": bool(display), "displayMessage": display}
    if details_key is not None:
        snippet[details_key] = details or {}
    return {"kind": "youtube#liveChatMessage", "etag": f"etag-{id}", "id": id,
            "snippet": snippet, "authorDetails": by}


def text_message(id: str, text: str, **kw: Any) -> dict[str, Any]:
    return item(id, "textMessageEvent", "textMessageDetails", {"messageText": text},
                display=text, **kw)


def super_chat(id: str, micros: int, currency: str, comment: str = "", tier: int = 1,
               **kw: Any) -> dict[str, Any]:
    shown = f"{currency} {micros / 1e6:.2f}"
    return item(id, "superChatEvent", "superChatDetails", {
        "amountMicros": str(micros), "currency": currency, "amountDisplayString": shown,
        "userComment": comment, "tier": tier}, display=f"{shown} from {comment}", **kw)


def super_sticker(id: str, micros: int, currency: str, alt_text: str, tier: int = 1,
                  **kw: Any) -> dict[str, Any]:
    shown = f"{currency} {micros / 1e6:.2f}"
    return item(id, "superStickerEvent", "superStickerDetails", {
        "superStickerMetadata": {"stickerId": "sticker-1", "altText": alt_text,
                                 "language": "en"},
        "amountMicros": str(micros), "currency": currency, "amountDisplayString": shown,
        "tier": tier}, display=f"Super Sticker {shown}", **kw)


def new_sponsor(id: str, level: str, upgrade: bool = False, **kw: Any) -> dict[str, Any]:
    return item(id, "newSponsorEvent", "newSponsorDetails",
                {"memberLevelName": level, "isUpgrade": upgrade},
                display=f"Welcome to {level}!", **kw)


def member_milestone(id: str, level: str, months: int, comment: str = "",
                     **kw: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"memberLevelName": level, "memberMonth": months}
    if comment:
        details["userComment"] = comment
    return item(id, "memberMilestoneChatEvent", "memberMilestoneChatDetails", details,
                display=comment, **kw)


def membership_gifting(id: str, count: int, level: str, **kw: Any) -> dict[str, Any]:
    return item(id, "membershipGiftingEvent", "membershipGiftingDetails",
                {"giftMembershipsCount": count, "giftMembershipsLevelName": level},
                display=f"Gifted {count} {level} memberships", **kw)


def message_deleted(id: str, deleted_id: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("by", MODERATOR)
    return item(id, "messageDeletedEvent", "messageDeletedDetails",
                {"deletedMessageId": deleted_id}, **kw)


def user_banned(id: str, channel_id: str, name: str = "", ban_type: str = "permanent",
                **kw: Any) -> dict[str, Any]:
    kw.setdefault("by", MODERATOR)
    banned = {"channelId": channel_id, "channelUrl": f"http://www.youtube.com/channel/"
              f"{channel_id}", "displayName": name, "profileImageUrl": ""}
    return item(id, "userBannedEvent", "userBannedDetails",
                {"bannedUserDetails": banned, "banType": ban_type}, **kw)
