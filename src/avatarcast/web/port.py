"""The HTTP port of a daemon or a worker: GET /healthz answers 200 while on air and connected,
else 503; GET /metrics is the Prometheus exposition; the parts served on it (the console, the
WebRTC view, a worker's channel pages) add their own routes. Owned by the event loop."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..infra.redact import global_redactor
from .metrics import CONTENT_TYPE

log = logging.getLogger(__name__)


class HttpPort:
    def __init__(self, host: str, port: int, status: Callable[[], dict[str, Any]],
                 metrics: Callable[[], bytes] | None = None,
                 more_routes: Callable[[web.Application], None] | None = None) -> None:
        self._host, self._port = host, port
        self._status = status
        self._metrics = metrics
        self._more_routes = more_routes
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        if self._metrics is not None:
            app.router.add_get("/metrics", self._scrape)
        if self._more_routes is not None:
            self._more_routes(app)
        # A viewer's MJPEG stream never ends by itself: do not wait for it at shutdown.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port
        log.info("health endpoint on http://%s:%s/healthz", self._host, self.port)

    async def _healthz(self, request: web.Request) -> web.Response:
        body = self._status()
        ok = (body.get("encoder_alive") and body.get("broker_connected")
              and not body.get("failed"))
        # Status text can quote FFmpeg or the broker; keep secrets out of it like out of logs.
        text = global_redactor()(json.dumps(body))
        return web.Response(
            text=text, status=200 if ok else 503, content_type="application/json"
        )

    async def _scrape(self, request: web.Request) -> web.Response:
        assert self._metrics is not None
        return web.Response(body=self._metrics(), headers={"Content-Type": CONTENT_TYPE})

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
