"""A worker: the channels of the channels file in one process, each a daemon of its own (its
clock, encoder, queues and renderer) under a supervisor that restarts it when it stops, and
never touches the others. One HTTP port serves them all: /healthz (every channel's status;
200 when all are on air and connected) and /metrics (each series labelled with its channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .daemon import Daemon
from .health import HealthServer
from .infra.errors import Unavailable, UserError
from .infra.logfmt import channel_id
from .settings import Settings

log = logging.getLogger(__name__)

RESTART_MIN_S, RESTART_MAX_S = 1.0, 30.0
STABLE_S = 60.0  # a channel up this long starts its next restart from the shortest backoff


class Worker:
    def __init__(self, base: Settings, channels: list[Settings]) -> None:
        self._base = base
        self._channels = channels
        self._daemons: dict[str, Daemon] = {}
        self._errors: dict[str, str] = {}
        self._stop = asyncio.Event()
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.registry.register(_ChannelMetrics(self._daemons))

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("shutdown requested")
        self._stop.set()
        for daemon in list(self._daemons.values()):
            daemon.request_stop()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        h = self._base.health
        http: HealthServer | None = None
        if h.enabled:
            http = HealthServer(h.host, h.port, self.status, self.exposition)
            await http.start()
        log.info("worker: %d channel(s): %s", len(self._channels),
                 ", ".join(c.channel or "?" for c in self._channels))
        tasks = [asyncio.create_task(self._supervise(c), name=f"channel-{c.channel}")
                 for c in self._channels]
        try:
            await self._stop.wait()
        finally:
            self.request_stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            if http is not None:
                await http.aclose()
        log.info("worker stopped")
        return 0

    async def _supervise(self, settings: Settings) -> None:
        """Run one channel until the worker stops, restarting it (with a growing backoff)
        whenever it stops by itself. Runs in its own context: every log line of the channel,
        from its tasks and its threads, names it."""
        cid = settings.channel or "?"
        channel_id.set(cid)
        backoff = RESTART_MIN_S
        while not self._stop.is_set():
            daemon = Daemon(settings)
            self._daemons[cid] = daemon
            started = time.monotonic()
            try:
                code = await daemon.run(handle_signals=False)
                error = daemon.last_error or f"stopped with exit code {code}"
            except (UserError, Unavailable) as exc:
                error = str(exc)
            except Exception as exc:
                log.exception("channel %s failed", cid)
                error = f"{type(exc).__name__}: {exc}"
            if self._stop.is_set():
                break
            self._errors[cid] = error
            if time.monotonic() - started > STABLE_S:
                backoff = RESTART_MIN_S
            log.error("channel %s is off air (%s); restarting it in %.0f s", cid, error, backoff)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._stop.wait()
            backoff = min(backoff * 2, RESTART_MAX_S)

    def status(self) -> dict[str, Any]:
        channels: dict[str, Any] = {}
        for c in self._channels:
            cid = c.channel or "?"
            daemon = self._daemons.get(cid)
            if daemon is not None and daemon.running:
                channels[cid] = daemon.status()
            else:
                channels[cid] = {"state": "off air", "encoder_alive": False,
                                 "broker_connected": False, "last_error": self._errors.get(cid)}
        return {
            "encoder_alive": all(st["encoder_alive"] for st in channels.values()),
            "broker_connected": all(st["broker_connected"] for st in channels.values()),
            "channels": channels,
        }

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


class _ChannelMetrics(Collector):
    """Every running channel's own metrics, each series labelled `channel`; the process's
    figures once, from the worker."""

    def __init__(self, daemons: dict[str, Daemon]) -> None:
        self._daemons = daemons

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for cid, daemon in list(self._daemons.items()):
            if not daemon.running:
                continue
            for metric in daemon.metrics.registry.collect():
                if metric.name.startswith("process_"):
                    continue
                merged = families.get(metric.name)
                if merged is None:
                    merged = families[metric.name] = Metric(
                        metric.name, metric.documentation, metric.type, metric.unit)
                for sample in metric.samples:
                    merged.add_sample(sample.name, {"channel": cid, **sample.labels},
                                      sample.value, sample.timestamp, sample.exemplar)
        yield from families.values()
