"""Who may use the HTTP port's routes (the console, the WebRTC view).

Without a token (served on the loopback only), the authority is the address: a request is
obeyed only when it was addressed to the loopback by name (its `Host`), so a page whose DNS
name was rebound to 127.0.0.1, or a same-host proxy serving another name, is refused. With a
token, every request shows it: as `Authorization: Bearer`, or as the cookie that opening
/?token=... once sets. The cookie holds a signature derived from the token, with its date,
never the token itself, and expires. Without a token, a route that acts (say, control)
refuses a call from a page of another origin (`Origin` not this host): nothing else would stop
any web page the operator opens from posting to the loopback. A client that keeps showing
wrong tokens is held off."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from ...settings import HealthSettings
from ..parts import Handler

log = logging.getLogger(__name__)

COOKIE = "avatarcast_token"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
COOKIE_MAX_AGE_S = 7 * 24 * 3600
MISSES_ALLOWED = 10  # wrong tokens a client may show per window, then 429 until it passes
MISS_WINDOW_S = 60.0
_CLIENTS_KEPT = 10_000  # clients whose misses are remembered (the oldest forgotten first)


def served(host: str, token: str | None) -> bool:
    """The console is served on the loopback, and anywhere else only with a token (whoever
    reaches it can make the avatar say anything)."""
    return token is not None or host in LOOPBACK


def guarded(health: HealthSettings, what: str) -> tuple[bool, str | None]:
    """(serve it, its token) for a guarded part of the HTTP port; a line says why when the
    part is off."""
    token = health.token.get_secret_value() if health.token is not None else None
    if served(health.host, token):
        return True, token
    log.warning("%s off: the HTTP port listens on %s; set AVATARCAST_HEALTH__TOKEN to serve it "
                "there", what, health.host)
    return False, None


def host_name(host: str) -> str:
    """The name of a `Host` header's value, without its port ('[::1]:80' -> '::1')."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Access:
    """The checks shared by every guarded route (owned by the event loop)."""

    def __init__(self, token: str | None, *, clock: Callable[[], float] = time.time) -> None:
        self._token = token
        self._clock = clock
        self._key = (hashlib.sha256(b"avatarcast console cookie\0" + token.encode()).digest()
                     if token is not None else b"")
        self._misses: OrderedDict[str, deque[float]] = OrderedDict()

    def cookie(self) -> str:
        """A new cookie value: its date and a signature of it, by a key made from the token."""
        issued = str(int(self._clock()))
        return f"{issued}.{self._sign(issued)}"

    def allowed(self, request: web.Request) -> bool:
        if self._token is None:
            return host_name(request.host) in LOOPBACK
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return hmac.compare_digest(auth.removeprefix("Bearer ").encode(),
                                       self._token.encode())
        return self._cookie_ok(request.cookies.get(COOKIE, ""))

    def guard(self, handler: Handler,
              refusal: str = "this console needs its token: open /?token=... once", *,
              acts: bool = False) -> Handler:
        """`handler` behind the checks; `acts`: a route that changes what airs."""
        async def run(request: web.Request) -> web.StreamResponse:
            client = request.remote or "?"
            self._hold_off(client)
            if acts and self._token is None and not _same_origin(request):
                raise web.HTTPForbidden(text="refused: a call from a page of another origin")
            # A page (/, or a worker's /ch/ID/) opened with ?token=: the cookie, for every path.
            if (self._token is not None and request.path.endswith("/")
                    and "token" in request.query):
                if not hmac.compare_digest(request.query["token"].encode(),
                                           self._token.encode()):
                    self._missed(client)
                    raise web.HTTPUnauthorized(text="wrong token")
                found = web.HTTPSeeOther(request.path)
                found.set_cookie(COOKIE, self.cookie(), httponly=True, samesite="Strict",
                                 max_age=COOKIE_MAX_AGE_S)
                raise found
            if not self.allowed(request):
                if self._token is None:
                    raise web.HTTPForbidden(
                        text=f"refused: addressed to {request.host!r}, not to the loopback "
                             "(serve the port elsewhere with AVATARCAST_HEALTH__TOKEN)")
                if "Authorization" in request.headers or COOKIE in request.cookies:
                    self._missed(client)
                raise web.HTTPUnauthorized(text=refusal)
            return await handler(request)

        return run

    def _sign(self, issued: str) -> str:
        return hmac.new(self._key, issued.encode(), hashlib.sha256).hexdigest()

    def _cookie_ok(self, value: str) -> bool:
        issued, _, mac = value.partition(".")
        if not issued.isdigit() or not hmac.compare_digest(mac.encode(),
                                                            self._sign(issued).encode()):
            return False
        age = self._clock() - int(issued)
        return -60 <= age <= COOKIE_MAX_AGE_S

    def _recent_misses(self, client: str) -> deque[float]:
        misses = self._misses.get(client, deque())
        while misses and misses[0] < self._clock() - MISS_WINDOW_S:
            misses.popleft()
        return misses

    def _hold_off(self, client: str) -> None:
        misses = self._recent_misses(client)
        if len(misses) >= MISSES_ALLOWED:
            wait = max(1, round(misses[0] + MISS_WINDOW_S - self._clock()))
            raise web.HTTPTooManyRequests(text=f"too many wrong tokens; try again in {wait} s",
                                          headers={"Retry-After": str(wait)})

    def _missed(self, client: str) -> None:
        misses = self._recent_misses(client)
        misses.append(self._clock())
        self._misses[client] = misses
        self._misses.move_to_end(client)
        while len(self._misses) > _CLIENTS_KEPT:
            self._misses.popitem(last=False)
        if len(misses) == MISSES_ALLOWED:
            log.warning("%d wrong console tokens from %s within %g s: held off", len(misses),
                        client, MISS_WINDOW_S)


def _same_origin(request: web.Request) -> bool:
    """No `Origin` (not a browser's cross-origin call), or one naming this very host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()
