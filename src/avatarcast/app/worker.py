"""A worker: channels of the channels file in one process, each a daemon of its own (its
clock, encoder, queues and renderer) under a supervisor that restarts it when it stops, and
never touches the others.

Workers that share a channels file share its channels: a worker runs a channel only while it
holds the channel's lease (lease.py), at most `fleet.capacity` of them; the others stand by
and take a channel whose owner died. One HTTP port serves the worker: /healthz (its channels'
status; 200 when the ones it runs are on air and connected), /metrics (each series
labelled with its channel), and each channel's console and WebRTC view under /ch/ID/
(worker_pages.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..broker.failures import BROKER_ERRORS, describe
from ..infra.errors import Unavailable, UserError
from ..infra.logfmt import channel_id
from ..settings import Settings
from ..web.port import HttpPort
from .daemon import Daemon
from .lease import LeaseLost, Leases, lease_queue
from .worker_pages import ChannelPages

log = logging.getLogger(__name__)

RESTART_MIN_S, RESTART_MAX_S = 1.0, 30.0
STABLE_S = 60.0  # a channel up this long starts its next restart from the shortest backoff


class Worker:
    def __init__(self, base: Settings, channels: list[Settings]) -> None:
        self._base = base
        self._channels = {c.channel or "?": c for c in channels}
        self._capacity = base.fleet.capacity or len(channels)
        self._leases = Leases(base.broker, base.fleet)
        self._daemons: dict[str, Daemon] = {}
        self._running: dict[str, asyncio.Task[None]] = {}  # the channels this worker owns
        self._leaving: set[asyncio.Task[None]] = set()  # dropped, their daemons stopping
        self._errors: dict[str, str] = {}
        self._shunned: dict[str, float] = {}  # handed over: not taken back before then
        # After a rejoin, no free channel is taken before then: a node that died freed its
        # holders' leases too, and each holder takes its own back within its fence.
        self._take_after = 0.0
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
        http: HttpPort | None = None
        if h.enabled:
            pages = ChannelPages(h, list(self._channels), self._daemons.get, self.status)
            http = HttpPort(h.host, h.port, self.status, self.exposition, pages.add_routes)
            await http.start()
        log.info("worker %s: up to %d of %d channel(s): %s", self._leases.worker,
                 self._capacity, len(self._channels), ", ".join(self._channels))
        leases = asyncio.create_task(self._hold_leases(), name="leases")
        try:
            await self._stop.wait()
        finally:
            self.request_stop()
            # The channels end their streams first; then their leases go, for another worker.
            await asyncio.gather(*self._running.values(), *self._leaving,
                                 return_exceptions=True)
            leases.cancel()
            await asyncio.gather(leases, return_exceptions=True)
            await self._leases.aclose()
            if http is not None:
                await http.aclose()
        log.info("worker stopped")
        return 0

    # -- leases --------------------------------------------------------------------------

    def _holding(self) -> bool:
        """The leases are still needed: running, or stopping while a channel still airs (it
        finishes what is on air under its lease, confirmed meanwhile)."""
        return not self._stop.is_set() or any(not t.done() for t in self._running.values())

    async def _hold_leases(self) -> None:
        """Connect, keep the leases held confirmed, take free channels while there is room;
        on losing the broker, every channel goes off air at once, then try again. Asked to
        stop, it takes nothing more and keeps confirming until the last channel has ended."""
        interval = self._base.broker.reconnect_interval_s
        while self._holding():
            try:
                await self._leases.connect()
            except BROKER_ERRORS as exc:
                log.warning("cannot reach the broker for the channels' leases (%s); retrying "
                            "in %.1f s", describe(exc), interval)
                await self._pause(interval)
                continue
            while self._holding():
                try:
                    await self._keep_and_take()
                except LeaseLost as exc:
                    # Closed under it (its node died): rejoin on another node. A broker that
                    # stopped answering on an open connection may still hold the leases:
                    # every channel goes off air, as with no cluster.
                    if not exc.answered:
                        log.error("lost the broker (%s): this worker's channels go off air; "
                                  "another worker may take them", exc)
                        break
                    if not await self._rejoined(exc):
                        break
            await self._drop_all("the channel's lease was lost")
            await self._leases.aclose()
            await self._pause(interval)

    async def _keep_and_take(self) -> None:
        fleet = self._base.fleet
        next_take = self._take_after
        while self._holding():
            await self._leases.confirm()
            ended = self._forget_stopped()
            now = time.monotonic()
            stopping = self._stop.is_set()
            if stopping:
                # Each channel that has finished goes to the standby at once, not when the
                # worker's last channel has finished.
                for cid in ended:
                    await self._leases.release(lease_queue(self._channels[cid].broker))
            elif now >= next_take and len(self._running) < self._capacity:
                free = [c for c in self._channels if c not in self._running
                        and self._shunned.get(c, 0.0) <= now]
                random.shuffle(free)
                for cid in free:
                    if len(self._running) >= self._capacity or self._stop.is_set():
                        break
                    if await self._leases.take(lease_queue(self._channels[cid].broker)):
                        log.info("took channel %s", cid)
                        self._start(cid)
                # The more a worker carries, the later it looks again: free channels tend
                # to go to the least loaded worker.
                next_take = now + fleet.poll_s * (1 + len(self._running))
            await self._pause(min(fleet.fence_s / 3, fleet.poll_s), self._leases.lost,
                              on_stop=not stopping)

    def _start(self, cid: str) -> None:
        self._errors.pop(cid, None)
        self._running[cid] = asyncio.create_task(self._supervise(self._channels[cid]),
                                                 name=f"channel-{cid}")

    def _forget_stopped(self) -> list[str]:
        """The channels whose supervisor has ended, no longer counted as running."""
        ended = [cid for cid, task in self._running.items() if task.done()]
        for cid in ended:
            del self._running[cid]
        return ended

    async def _rejoined(self, why: LeaseLost) -> bool:
        """The leases' connection is gone: on the next node, with the leases taken back
        before the fence runs out, the channels never notice (a cluster that lost a node)."""
        try:
            lost = await self._leases.rejoin()
        except LeaseLost as exc:
            log.error("lost the broker (%s; then %s): this worker's channels go off air; "
                      "another worker may take them", why, exc)
            return False
        self._take_after = time.monotonic() + self._base.fleet.fence_s
        log.warning("the leases' broker connection was lost (%s); reconnected, %d of %d "
                    "channel(s) kept", why, len(self._running) - len(lost), len(self._running))
        for cid in [c for c in self._running if lease_queue(self._channels[c].broker) in lost]:
            log.error("channel %s: another worker took its lease while the broker was away; "
                      "it goes off air here", cid)
            self._drop(cid, "another worker took the channel's lease")
        return True

    async def _drop_all(self, reason: str) -> None:
        for cid in list(self._running):
            self._drop(cid, reason)
        await asyncio.gather(*self._leaving, return_exceptions=True)

    def _drop(self, cid: str, reason: str) -> None:
        """Off air at once; its supervisor, no longer the channel's (`_mine`), ends with its
        daemon (kept in `_leaving` until then, awaited by whoever waits for them all)."""
        if (task := self._running.pop(cid, None)) is not None:
            self._leaving.add(task)
            task.add_done_callback(self._leaving.discard)
        if (daemon := self._daemons.get(cid)) is not None:
            daemon.off_air_now(reason)

    def _mine(self, cid: str) -> bool:
        """Still this supervisor's channel: the lease valid, and not dropped meanwhile."""
        return self._leases.valid() and self._running.get(cid) is asyncio.current_task()

    async def _pause(self, seconds: float, also: asyncio.Event | None = None,
                     on_stop: bool = True) -> None:
        """Wait `seconds`, or less when `also` is set or (`on_stop`) when asked to stop."""
        events = [e for e in (self._stop if on_stop else None, also) if e is not None]
        if not events:
            await asyncio.sleep(seconds)
            return
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # -- channels ------------------------------------------------------------------------

    async def _supervise(self, settings: Settings) -> None:
        """Run one channel while this worker owns it, restarting it (with a growing backoff)
        whenever it stops by itself. Runs in its own context: every log line of the channel,
        from its tasks and its threads, names it."""
        cid = settings.channel or "?"
        channel_id.set(cid)
        backoff = RESTART_MIN_S
        failures = 0  # in a row, each run short of STABLE_S
        while not self._stop.is_set():
            if not self._mine(cid):
                return  # the lease is gone: the channel is someone else's now
            daemon = Daemon(settings, fence=self._leases.valid,
                            web_parts=self._base.health.enabled)
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
            finally:
                if self._daemons.get(cid) is daemon:  # (not a newer run's, after a drop)
                    del self._daemons[cid]
            if self._stop.is_set():
                return
            self._errors[cid] = error
            if not self._mine(cid):
                return
            if time.monotonic() - started > STABLE_S:
                backoff, failures = RESTART_MIN_S, 0
            failures += 1
            if failures >= self._base.fleet.give_up_after:
                await self._hand_over(cid, failures, error)
                return
            log.error("channel %s is off air (%s); restarting it in %.0f s", cid, error, backoff)
            await self._pause(backoff)
            backoff = min(backoff * 2, RESTART_MAX_S)

    async def _hand_over(self, cid: str, failures: int, error: str) -> None:
        """The channel keeps failing here (an avatar this machine lacks, an ingest that
        refuses this host): let its lease go, for a worker where it may air, and leave it to
        the others for a while."""
        wait = self._base.fleet.give_up_s
        self._errors[cid] = (f"failed {failures} times in a row on this worker ({error}); "
                             f"handed over, not taken back here for {wait:g} s")
        log.error("channel %s %s", cid, self._errors[cid])
        self._shunned[cid] = time.monotonic() + wait
        await self._leases.release(lease_queue(self._channels[cid].broker))

    def status(self) -> dict[str, Any]:
        channels: dict[str, Any] = {}
        for cid in self._channels:
            daemon = self._daemons.get(cid)
            if daemon is not None and daemon.running:
                channels[cid] = daemon.status()
            elif cid in self._running:
                channels[cid] = {"state": "off air", "encoder_alive": False,
                                 "broker_connected": False, "last_error": self._errors.get(cid)}
            else:
                channels[cid] = {"state": "elsewhere", "last_error": self._errors.get(cid)}
        mine = [st for cid, st in channels.items() if cid in self._running]
        return {
            "worker": self._leases.worker,
            "owned": sorted(self._running),
            "capacity": self._capacity,
            "leases_connected": self._leases.connected,
            "encoder_alive": all(st["encoder_alive"] for st in mine),
            "broker_connected": self._leases.connected and all(
                st["broker_connected"] for st in mine),
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
            if not daemon.running or daemon.channel is None:
                continue
            for metric in daemon.channel.metrics.registry.collect():
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
