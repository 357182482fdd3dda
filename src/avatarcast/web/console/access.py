"""Who may use the HTTP port's routes (the console, the WebRTC view): everyone on the loopback,
and anywhere else only with the token, as a cookie set by opening /?token=... once or as an
`Authorization: Bearer` header."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from ...settings import HealthSettings
from ..parts import Handler

log = logging.getLogger(__name__)

COOKIE = "avatarcast_token"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


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


class Access:
    """The token check, shared by every guarded route (owned by the event loop)."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    def allowed(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        given = request.cookies.get(COOKIE, "")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth.removeprefix("Bearer ")
        return hmac.compare_digest(given.encode(), self._token.encode())

    def guard(self, handler: Handler,
              refusal: str = "this console needs its token: open /?token=... once") -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            # A page (/, or a worker's /ch/ID/) opened with ?token=: the cookie, for every path.
            if (self._token is not None and request.path.endswith("/")
                    and "token" in request.query):
                if not hmac.compare_digest(request.query["token"].encode(),
                                           self._token.encode()):
                    raise web.HTTPUnauthorized(text="wrong token")
                found = web.HTTPSeeOther(request.path)
                found.set_cookie(COOKIE, self._token, httponly=True, samesite="Strict")
                raise found
            if not self.allowed(request):
                raise web.HTTPUnauthorized(text=refusal)
            return await handler(request)

        return run
