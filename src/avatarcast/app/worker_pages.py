"""A worker's pages on its HTTP port: / lists the channels of its channels file (which are on
air from this worker, which from another), and /ch/ID/ is that channel's web console and
/ch/ID/whep its WebRTC view, served while the channel is on air from this worker.

A channel this worker does not run answers 503 with a line that says so (its console is on
its owner's HTTP port); a part that is off (settings, access rule, aiortc missing) answers 404.
Everything here follows the console's access rule (console/access.py)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..infra.redact import global_redactor
from ..settings import HealthSettings
from ..web.console.access import Access, guarded
from ..web.console.routes import Console
from ..web.parts import UNGUARDED, Handler, Route, add_route
from ..web.webrtc.routes import WHEP_ROUTES
from .daemon import Daemon

PARTS: dict[str, tuple[Route, ...]] = {"console": tuple(Console.ROUTES),
                                        "whep": tuple(WHEP_ROUTES)}


class ChannelPages:
    """Owned by the event loop (aiohttp's handlers)."""

    def __init__(self, health: HealthSettings, channels: list[str],
                 daemon_of: Callable[[str], Daemon | None],
                 status: Callable[[], dict[str, Any]]) -> None:
        self._channels = channels
        self._daemon_of = daemon_of
        self._status = status
        self._index_on = health.console and guarded(health, "web console")[0]
        self._access = Access(health.token.get_secret_value() if health.token else None)

    def add_routes(self, app: web.Application) -> None:
        guard = self._access.guard
        if self._index_on:
            app.router.add_get("/", guard(self._index))
        for cid in self._channels:
            app.router.add_get(f"/ch/{cid}", _redirect(f"/ch/{cid}/"))
            sub = web.Application()
            for kind, routes in PARTS.items():
                for method, path, name in routes:
                    forward = self._forward(cid, kind, name)
                    add_route(sub, method, path,
                              forward if name in UNGUARDED else guard(forward))
            app.add_subapp(f"/ch/{cid}", sub)

    def _forward(self, cid: str, kind: str, name: str) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            daemon = self._daemon_of(cid)
            if daemon is None or not daemon.running:
                state = self._status()["channels"].get(cid, {})
                where = ("not run by this worker (another worker of the fleet runs it, its "
                         "console on that worker's port; or none has room for it)"
                         if state.get("state") == "elsewhere" else
                         "not on air (starting, or restarting after an error: see /healthz)")
                raise web.HTTPServiceUnavailable(text=f"channel {cid} is {where}",
                                                 headers={"Retry-After": "5"})
            part = daemon.parts.get(kind)
            if part is None:
                raise web.HTTPNotFound(text=f"channel {cid}: the {_NAMES[kind]} is off")
            return await part.handler(name)(request)

        return run

    async def _index(self, request: web.Request) -> web.StreamResponse:
        st = self._status()
        rows = []
        for cid, ch in st["channels"].items():
            here = cid in st["owned"]
            link = (f'<a href="ch/{html.escape(cid)}/">{html.escape(cid)}</a>' if here
                    else html.escape(cid))
            rows.append(f"<tr><td>{link}</td><td>{html.escape(str(ch.get('state', '')))}</td>"
                        f"<td>{html.escape(str(ch.get('last_error') or ''))}</td></tr>")
        page = _INDEX.format(worker=html.escape(str(st["worker"])), rows="\n".join(rows),
                             owned=len(st["owned"]), capacity=st["capacity"])
        # Errors can quote FFmpeg or the broker: no secret on the page, as in /healthz.
        return web.Response(text=global_redactor()(page), content_type="text/html",
                            headers={"Cache-Control": "no-store"})


_NAMES = {"console": "web console", "whep": "WebRTC view"}


def _redirect(to: str) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        query = request.rel_url.raw_query_string  # as sent: a token's %, + and & intact
        raise web.HTTPMovedPermanently(to + (f"?{query}" if query else ""))

    return run


_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>avatarcast worker {worker}</title>
<style>body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #1d2733; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 4px 10px;
border-bottom: 1px solid #e3e7ec; }}</style></head>
<body><h1>avatarcast worker {worker}</h1>
<p>{owned} of its {capacity} channel places in use. A channel on air from this worker links
to its console; the others are on air from another worker, or waiting for one.</p>
<table><thead><tr><th>channel</th><th>state</th><th>last error</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""
