"""The parts of the HTTP port that belong to one channel (the web console, the WebRTC view),
as route tables: a daemon serves them at /, a worker under /ch/ID/ for whichever of its
channels is on air from it at the time (worker_pages.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, str]  # method, path, the part's handler name


class Part(Protocol):
    ROUTES: Sequence[Route]

    def handler(self, name: str) -> Handler: ...


def add_part(app: web.Application, part: Part) -> None:
    """Serve a part's routes on `app` (a daemon's HTTP port)."""
    for method, path, name in part.ROUTES:
        app.router.add_route(method, path, part.handler(name))
