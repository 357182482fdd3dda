"""The parts of the HTTP port that belong to one channel (the web console, the WebRTC view),
as route tables: a daemon serves them at /, a worker under /ch/ID/ for whichever of its
channels is on air from it at the time (worker_pages.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, str]  # method, path, the part's handler name
# Handlers served without the token check: a CORS preflight cannot carry one.
UNGUARDED = frozenset({"_options"})


class Part(Protocol):
    ROUTES: Sequence[Route]

    def handler(self, name: str) -> Handler: ...

    async def aclose(self) -> None: ...


def add_route(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """One route; a GET answers HEAD too."""
    if method == "GET":
        app.router.add_get(path, handler)
    else:
        app.router.add_route(method, path, handler)


def add_part(app: web.Application, part: Part) -> None:
    """Serve a part's routes on `app` (a daemon's HTTP port)."""
    for method, path, name in part.ROUTES:
        add_route(app, method, path, part.handler(name))
