"""Chat posted by relays (TikTok, Bilibili, Kick... whatever a relay reads) to a small HTTP
server. Each request is signed with a shared secret (HMAC-SHA256 over "<timestamp>.<body>"),
holds one event or a batch of up to 100, and is accepted whole or refused whole. What is
accepted waits in a bounded queue that `events()` reads; a full queue answers 429, so the
relay slows down rather than our memory growing. The schema, the signature and every answer
are in docs/CHAT_WEBHOOK.md. Neither the secret nor a signature is logged or echoed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .message import ChatEvent, ChatMessage, Removal
from .twitch import ChatError

log = logging.getLogger(__name__)

MAX_BATCH = 100
READ_TIMEOUT_S = 10.0  # a body trickling in slower than this is dropped (408)
CLOSE_S = 5.0
RETRY_AFTER_S = 2
SEEN_KEPT = 20_000  # accepted signatures remembered within the skew window; then 429
WARNS_PER_MIN = 20  # refusals logged one line each per minute; the rest only counted
TS_HEADER, SIG_HEADER = "X-Avatarcast-Timestamp", "X-Avatarcast-Signature"
PLATFORM = r"^[A-Za-z0-9_-]{1,32}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed here")
    return value


def _clean(value: str) -> str:
    """Text is spoken and shown, never interpreted: tabs and line breaks become spaces, the
    other control characters go."""
    return _CONTROL.sub("", re.sub(r"[\t\n\r]", " ", value))


Key = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control)]
Word = Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_no_control)]
Badge = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_control)]
Currency = Annotated[str, Field(min_length=1, max_length=10), AfterValidator(_no_control)]
Name = Annotated[str, Field(max_length=100), AfterValidator(_clean)]
Text = Annotated[str, Field(max_length=2000), AfterValidator(_clean)]
Platform = Annotated[str, Field(pattern=PLATFORM)]
Number = Annotated[float, Field(ge=0)]
COMMON = {"id", "platform", "type", "at"}
ALLOWED = {"message": {"user", "display_name", "text", "badges"},
           "paid": {"user", "display_name", "text", "badges", "amount", "currency"},
           "subscription": {"user", "display_name", "text", "badges", "tier"},
           "membership": {"user", "display_name", "text", "badges", "tier"},
           "removal": {"message_id", "user"}}


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    id: Key
    platform: Platform | None = None
    type: Literal["message", "paid", "subscription", "membership", "removal"] = "message"
    user: Key | None = None
    display_name: Name | None = None
    text: Text | None = None
    amount: Number | None = None
    currency: Currency | None = None
    tier: Word | None = None
    badges: Annotated[list[Badge], Field(max_length=20)] = Field(default_factory=list)
    at: Number | None = None
    message_id: Key | None = None

    @model_validator(mode="after")
    def _fits_its_type(self) -> Event:
        if stray := sorted(self.model_fields_set - COMMON - ALLOWED[self.type]):
            raise ValueError(f"{stray[0]}: not a field of type {self.type}")
        if self.type == "removal":
            if self.message_id is None and self.user is None:
                raise ValueError("a removal needs message_id or user")
        elif self.user is None:
            raise ValueError(f"user: required for type {self.type}")
        elif self.type == "message" and not (self.text or "").strip():
            raise ValueError("text: required (not blank) for type message")
        elif self.type == "paid" and self.amount is None:
            raise ValueError("amount: required for type paid")
        return self


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_BATCH)]


def parse(body: bytes, platform_default: str, now: float) -> list[ChatEvent]:
    """The events of a request's body, or ValueError with one line naming what is wrong."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError('the body must be a JSON object: one event, or {"events": [...]}')
    try:
        items = (Batch.model_validate(data).events if "events" in data
                 else [Event.model_validate(data)])
    except ValidationError as exc:
        raise ValueError(_first_error(exc)) from None
    return [to_event(e, platform_default, now) for e in items]


def to_event(e: Event, platform_default: str, now: float) -> ChatEvent:
    platform = (e.platform or platform_default).lower()
    if e.type == "removal":
        return Removal(platform, message_id=e.message_id, user=e.user)
    assert e.user is not None  # (the validator's)
    return ChatMessage(
        platform=platform, id=e.id, user=e.user, display_name=e.display_name or e.user,
        text=e.text or "", at=now if e.at is None else e.at, kind=e.type, amount=e.amount,
        currency=e.currency, tier=e.tier, badges=tuple(e.badges))


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    line = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where.lstrip('.')}: {line}{more}" if where else f"{line}{more}"


class _Refused(Exception):
    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers


class WebhookChat:
    """Owned by the event loop (aiohttp's handlers)."""

    def __init__(self, secret: str, *, host: str = "127.0.0.1", port: int = 8095,
                 path: str = "/chat", platform_default: str = "webhook",
                 max_body: int = 64 * 1024, max_pending: int = 1000,
                 max_skew_s: float = 300.0) -> None:
        if len(secret) < 16:
            raise ValueError("the chat webhook's secret must be at least 16 characters; "
                             "make a random one with `openssl rand -hex 32`")
        if not path.startswith("/") or not re.fullmatch(PLATFORM, platform_default):
            raise ValueError("the chat webhook's path must start with / and its default "
                             "platform be letters, digits, - or _ (32 at most)")
        if max_pending < MAX_BATCH or max_body < 1024 or max_skew_s <= 0:
            raise ValueError(f"the chat webhook needs max_pending >= {MAX_BATCH} (one full "
                             "batch), max_body >= 1024 and max_skew_s > 0")
        self._key = secret.encode()
        self.host, self.port, self.path = host, port, path
        self._platform, self._max_body = platform_default, max_body
        self._max_pending, self._max_skew_s = max_pending, max_skew_s
        # One slot more than max_pending: the end of events() always fits.
        self._queue: asyncio.Queue[ChatEvent | None] = asyncio.Queue(max_pending + 1)
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> when it goes stale
        self._runner: web.AppRunner | None = None
        self._closed = False
        self.accepted = self.refused = 0  # events accepted; requests refused
        self._warn_since, self._warned, self._unwarned = 0.0, 0, 0

    @property
    def pending(self) -> int:
        """Events accepted and not yet read."""
        return self._queue.qsize() - (1 if self._closed else 0)

    async def start(self) -> None:
        if self._runner is not None:
            return
        if self._closed:
            raise RuntimeError("the chat webhook was closed")
        app = web.Application(client_max_size=self._max_body)
        app.router.add_route("*", self.path, self._receive)
        app.router.add_route("*", self.path.rstrip("/") + "/health", self._health)
        app.router.add_route("*", "/{any:.*}", self._unknown)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ChatError(f"the chat webhook cannot listen on {self.host}:{self.port}: "
                            f"{exc.strerror or exc}; free that port or choose another") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("chat webhook on http://%s:%d%s", self.host, self.port, self.path)

    async def events(self) -> AsyncIterator[ChatEvent]:
        if not self._closed:
            await self.start()
        while (event := await self._queue.get()) is not None:
            yield event
        self._queue.put_nowait(None)  # whoever reads next finds the end too

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                async with asyncio.timeout(CLOSE_S):
                    await runner.cleanup()
            except TimeoutError:
                log.warning("chat webhook: not stopped within %.0f s; left", CLOSE_S)
        self._queue.put_nowait(None)

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._accept(request)
        except _Refused as refused:
            return self._refuse(request, refused.status, refused.reason, refused.headers)

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise _Refused(405, f"only POST is served on {self.path}", {"Allow": "POST"})
        too_big = _Refused(413, f"the body is over {self._max_body} bytes")
        if (request.content_length or 0) > self._max_body:
            raise too_big
        if request.content_type != "application/json":
            raise _Refused(415, "Content-Type must be application/json")
        body = bytearray()
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                while chunk := await request.content.readany():
                    body += chunk
                    if len(body) > self._max_body:
                        raise too_big
        except TimeoutError:
            raise _Refused(408, f"the body took over {READ_TIMEOUT_S:g} s to arrive") from None
        except ConnectionError:  # (no one reads the answer; the warning is for us)
            raise _Refused(400, "the connection was lost before the body's end") from None
        signature, stale_at = self._verify(request, bytes(body))
        if signature in self._seen:
            raise _Refused(409, "this exact request was accepted already (a replay)")
        try:
            events = parse(bytes(body), self._platform, time.time())
        except ValueError as exc:
            raise _Refused(400, str(exc)) from None
        self._forget_stale()
        if self._closed:
            raise _Refused(503, "the chat webhook is closing")
        retry = {"Retry-After": str(RETRY_AFTER_S)}
        if self._queue.qsize() + len(events) > self._max_pending:
            raise _Refused(429, f"{self.pending} events wait to be read; retry later", retry)
        if len(self._seen) >= SEEN_KEPT:
            raise _Refused(429, "too many requests within the skew window; retry later", retry)
        for event in events:  # no await from the check to here: all of the batch or none
            self._queue.put_nowait(event)
        self._seen[signature] = stale_at
        self.accepted += len(events)
        log.debug("chat webhook: %d events from %s", len(events), request.remote)
        return web.json_response({"accepted": len(events)}, status=202)

    def _verify(self, request: web.Request, body: bytes) -> tuple[str, float]:
        """(the signature, when its timestamp goes stale) of a request signed with the secret
        within the skew window; else _Refused (401)."""
        stamp, given = request.headers.get(TS_HEADER, ""), request.headers.get(SIG_HEADER)
        if not given:
            raise _Refused(401, f"missing {SIG_HEADER}")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise _Refused(401, f"missing or malformed {TS_HEADER} (Unix seconds)")
        want = hmac.new(self._key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        given = given.strip().lower()  # (isascii: a header's odd bytes arrive as surrogates)
        if not (given.isascii() and hmac.compare_digest(given, f"sha256={want}")):
            raise _Refused(401, f"bad {SIG_HEADER}")
        if abs(time.time() - int(stamp)) > self._max_skew_s:
            raise _Refused(401, f"{TS_HEADER} is over {self._max_skew_s:g} s from this "
                           "server's clock (a replay, or a clock to set)")
        return want, int(stamp) + self._max_skew_s

    def _forget_stale(self) -> None:
        now = time.time()
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        if len(self._seen) >= SEEN_KEPT:  # (out of order: the oldest first is not exact)
            self._seen = OrderedDict((s, t) for s, t in self._seen.items() if t >= now)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return self._refuse(request, 405, "only GET is served here", {"Allow": "GET"})
        return web.json_response({"pending": self.pending})

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        return self._refuse(request, 404, f"nothing here; POST events to {self.path}")

    def _refuse(self, request: web.Request, status: int, reason: str,
                headers: Mapping[str, str] | None = None) -> web.Response:
        reason = _CONTROL.sub("?", reason)[:300]  # (a field's name is the sender's)
        self.refused += 1
        now = time.monotonic()
        if now - self._warn_since >= 60.0:
            if self._unwarned:
                log.warning("chat webhook: %d more requests refused", self._unwarned)
            self._warn_since, self._warned, self._unwarned = now, 0, 0
        if self._warned < WARNS_PER_MIN:
            self._warned += 1
            log.warning("chat webhook: refused %s %s from %s (%d): %s", request.method,
                        _CONTROL.sub("?", request.path)[:100], request.remote, status, reason)
        else:
            self._unwarned += 1
        return web.json_response({"error": reason}, status=status, headers=headers)
