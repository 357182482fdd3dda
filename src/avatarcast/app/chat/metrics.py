"""`avatarcast chat`'s counters, in Prometheus's text format: every decision by platform and
reason, what waits, and whether each source is read; served at /metrics on 127.0.0.1 when
chat.metrics_port is set."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ...infra.errors import UserError


class ChatMetrics:
    def __init__(self, sources: list[str]) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "avatarcast_chat_messages", "Chat messages by decision (waiting, published, "
            "dropped, repeated, words dropped) and reason", ["platform", "decision", "reason"],
            registry=self.registry)
        self.waiting = Gauge("avatarcast_chat_waiting", "Chat messages waiting for an answer",
                             registry=self.registry)
        self._up = Gauge("avatarcast_chat_source_up", "1 while a chat source is read",
                         ["platform"], registry=self.registry)
        for name in sources:
            self._up.labels(name).set(0)

    def decided(self, platform: str, decision: str, reason: str | None) -> None:
        self.decisions.labels(platform, decision, reason or "").inc()

    def source_up(self, platform: str, up: bool) -> None:
        self._up.labels(platform).set(1 if up else 0)

    def text(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, port: int, host: str = "127.0.0.1") -> None:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=self.text(), headers={"Content-Type":
                                                           CONTENT_TYPE_PLAIN_0_0_4})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise UserError(f"chat.metrics_port: cannot listen on {host}:{port} "
                                f"({exc.strerror or exc}); free it or choose another") from None
            await asyncio.Event().wait()  # served until cancelled
        finally:
            await runner.cleanup()
