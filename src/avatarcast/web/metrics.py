"""What /metrics says, in Prometheus's text format (prometheus-client, one registry per daemon).

Counters that live elsewhere (frames sent, late, dropped; encoder restarts; dead letters) are
read when scraped, from a snapshot the daemon gives; message outcomes and the timing histograms
follow the lifecycle events. Owned by the event loop (scrapes are served there too).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..onair.state import StreamState
from ..playout.lifecycle import Event

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_PAGE = os.sysconf("SC_PAGE_SIZE")
_SECONDS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Snapshot:
    """The daemon's live figures at scrape time."""

    state: str
    frames_sent: int
    frames_late: int
    frames_held: int
    frames_dropped: int
    encoder_alive: bool
    encoder_restarts: int
    encoder_uptime_s: float
    encoder_pid: int | None
    broker_connected: bool
    backlog: int
    queue_ready: int | None  # messages waiting in RabbitMQ's speak queue (polled)
    dead_lettered: int
    events_dropped: int
    outputs_up: dict[str, bool] = field(default_factory=dict)
    # The programme's loudness (integrated_lufs, short_term_lufs, true_peak_dbtp), if metered.
    loudness: dict[str, float | None] = field(default_factory=dict)


def _rss(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class _Live(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        return iter(())  # registered before the daemon's parts exist: read only when scraped

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot()
        for name, value, doc in (
            ("frames_sent", s.frames_sent, "Frames written to the encoder."),
            ("frames_late", s.frames_late, "Ticks late, or frames held because the renderer "
             "fell behind."),
            ("frames_held", s.frames_held, "Frames held, with silence, because the animator "
             "fell behind air (counted in frames_late too)."),
            ("frames_dropped", s.frames_dropped, "Frames the encoder did not take, or ticks "
             "skipped after a stall."),
            ("encoder_restarts", s.encoder_restarts, "FFmpeg restarts."),
            ("dead_lettered", s.dead_lettered, "Messages copied to the dead-letter queue."),
            ("events_dropped", s.events_dropped, "Lifecycle events dropped while the broker "
             "was away."),
        ):
            c = CounterMetricFamily(f"avatarcast_{name}", doc)
            c.add_metric([], value)
            yield c
        state = GaugeMetricFamily("avatarcast_state", "The stream's state (1 for the current "
                                  "one).", labels=["state"])
        for st in StreamState:
            state.add_metric([st.value], 1.0 if st.value == s.state else 0.0)
        yield state
        yield _gauge("encoder_up", "1 while FFmpeg runs.", float(s.encoder_alive))
        yield _gauge("encoder_uptime_seconds", "Seconds since FFmpeg last started.",
                     s.encoder_uptime_s)
        yield _gauge("broker_connected", "1 while consuming from RabbitMQ.",
                     float(s.broker_connected))
        yield _gauge("backlog_messages", "Messages taken from the queue and not settled yet.",
                     float(s.backlog))
        if s.queue_ready is not None:
            yield _gauge("queue_messages", "Messages waiting in RabbitMQ's speak queue.",
                         float(s.queue_ready))
        if (rss := _rss(s.encoder_pid)) is not None:
            yield _gauge("ffmpeg_resident_memory_bytes", "FFmpeg's resident memory.", rss)
        lufs = GaugeMetricFamily("avatarcast_loudness_lufs", "The programme's loudness "
                                 "(EBU R128): integrated since the start, short-term over 3 s.",
                                 labels=["window"])
        for window in ("integrated", "short_term"):
            if (v := s.loudness.get(f"{window}_lufs")) is not None:
                lufs.add_metric([window], v)
        yield lufs
        if (peak := s.loudness.get("true_peak_dbtp")) is not None:
            yield _gauge("true_peak_dbtp", "The programme's largest true peak (dBTP).", peak)
        if s.outputs_up:
            out = GaugeMetricFamily("avatarcast_output_up", "1 while the output is sending.",
                                    labels=["output"])
            for name, up in s.outputs_up.items():
                out.add_metric([name], float(up))
            yield out


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    g = GaugeMetricFamily(f"avatarcast_{name}", doc)
    g.add_metric([], value)
    return g


class Metrics:
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, CPU
        self.registry.register(_Live(snapshot))
        r = self.registry
        self.messages = Counter("avatarcast_messages", "Messages by outcome.", ["outcome"],
                                registry=r)
        self.time_to_air = Histogram(
            "avatarcast_time_to_air_seconds", "From a message's arrival to its first frame "
            "on air.", buckets=_SECONDS, registry=r)
        self.synthesis = Histogram(
            "avatarcast_synthesis_seconds", "Time to a message's first speech.",
            buckets=_SECONDS, registry=r)
        self.render = Histogram(
            "avatarcast_render_seconds", "Speech and face for a whole message.",
            buckets=_SECONDS, registry=r)
        self.rtf = Gauge("avatarcast_speech_real_time_factor", "Synthesis time over speech "
                         "duration, for the last message.", registry=r)
        self._received: dict[str, float] = {}

    def observe(self, event: Event) -> None:
        """A lifecycle subscriber."""
        f = event.fields
        if event.name == "accepted":
            self._received[event.id] = float(f.get("received_at", event.at))
            if len(self._received) > 10_000:  # ids that never settled here (a crash, a requeue)
                self._received.pop(next(iter(self._received)))
        elif event.name == "on_air":
            if (t0 := self._received.get(event.id)) is not None:
                self.time_to_air.observe(max(0.0, event.at - t0))
        elif event.name == "duplicate":
            self.messages.labels("duplicate").inc()
        elif event.name in ("finished", "skipped", "interrupted", "failed", "requeued"):
            self._received.pop(event.id, None)
            self.messages.labels(_outcome(event)).inc()
            if event.name == "finished":
                if (tts := f.get("tts_first_s")) is not None:
                    self.synthesis.observe(float(tts))
                if (render := f.get("render_s")) is not None:
                    self.render.observe(float(render))
                if (rtf := f.get("speech_rtf")) is not None:
                    self.rtf.set(float(rtf))

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


def _outcome(event: Event) -> str:
    if event.name == "finished":
        return "aired"
    if event.name == "failed":
        return "dead_lettered"
    if event.name == "skipped" and event.fields.get("reason") == "cleared":
        return "cleared"
    return event.name
