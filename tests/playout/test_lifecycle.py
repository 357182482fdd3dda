"""Following a message: the lifecycle events the daemon publishes to its topic exchange,
`avatarcast say --wait` built on them, and /metrics scraped from the running daemon."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from avatarcast.app.cli.exits import EXIT_FAILED, EXIT_NOT_AIRED, EXIT_OK, EXIT_TIMED_OUT
from avatarcast.playout.lifecycle import Event, Lifecycle
from avatarcast.web.metrics import Metrics, Snapshot
from harness.daemon import AMQP, DaemonProc, QueueNames, drain, publish
from harness.events import EventTap
from harness.services import rabbitmqctl, wait_port

pytestmark = pytest.mark.services

LONG = ("This is a long announcement that goes on for a while, so that there is time to skip "
        "it while it is on the air. It has a second sentence too, and then a third one.")


def _env(queues: QueueNames) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    env.update(queues.env())
    return env


def say(queues: QueueNames, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "avatarcast", "say", *args], cwd=tmp_path,
                          env=_env(queues), capture_output=True, text=True, timeout=180)


def _ready(daemon: DaemonProc) -> None:
    daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")


def test_say_wait_follows_the_message_until_it_aired(
    tmp_path: Path, queues: QueueNames,
) -> None:
    daemon = DaemonProc(tmp_path / "d", queues, {})
    try:
        _ready(daemon)
        with EventTap(queues.events) as tap:
            done = say(queues, tmp_path, "--wait", "--id", "hello-1", "Hello there, viewers.")
            assert done.returncode == EXIT_OK, done.stdout + done.stderr
            lines = done.stdout.splitlines()
            assert lines[0] == "hello-1"
            steps = [ln.split(" ")[0] for ln in lines[1:]]
            assert steps == ["accepted", "rendering", "on", "finished"], lines
            assert "nothing consumes" not in done.stderr
            events = tap.wait_for(lambda ev: any(e["event"] == "finished" for e in ev), 10,
                                  "finished")
            mine = [e for e in events if e["id"] == "hello-1"]
            assert [e["event"] for e in mine] == ["accepted", "rendering", "on_air", "finished"]
            assert tap.keys[: len(mine)] == [e["event"] for e in mine]  # routing key = name
            on_air, finished = mine[2], mine[3]
            assert finished["stream_s"] > on_air["stream_s"] > mine[0]["stream_s"] - 0.5
            st = daemon.wait_for(lambda s: s["recent"], 5, "recent")
            (entry,) = st["recent"]
            assert on_air["stream_frame"] == entry["stream_first"]
            assert finished["stream_frame"] == entry["stream_last"]
            # The speech's real-time factor: its synthesis time over its length (how fast
            # is for bench/). Synthesis is part of the render, and the speech fills the
            # frames that aired, all but the last one's padding: rtf x length <= render_s.
            # (+ 2 ms: the events' figures are rounded.)
            spoken_s = finished["stream_s"] - on_air["stream_s"]
            assert finished["render_s"] > 0 and finished["speech_rtf"] > 0
            assert finished["speech_rtf"] * spoken_s <= finished["render_s"] + 0.002

            # The same id again: a duplicate, not aired twice; --wait says so and succeeds.
            again = say(queues, tmp_path, "--wait", "--id", "hello-1", "Hello there, viewers.")
            assert again.returncode == EXIT_OK and "duplicate" in again.stdout, again.stdout

            # A body nobody can read, with an id: dead-lettered, and its publisher is told.
            publish(queues.speak, b"{not json", "bad-1")
            tap.wait_for(lambda ev: any(e["id"] == "bad-1" for e in ev), 10, "bad-1")
            (bad,) = tap.of("bad-1")
            assert bad["event"] == "failed" and "JSON" in bad["reason"], bad

            # A voice that does not exist fails the message: --wait exits 1 with the reason.
            failed = say(queues, tmp_path, "--wait", "--voice", "xx_XX-nobody-low", "Hi.")
            assert failed.returncode == EXIT_FAILED, failed.stdout + failed.stderr
            assert "failed:" in failed.stderr and "Traceback" not in failed.stderr
    finally:
        daemon.kill()


def test_say_wait_reports_a_skip(tmp_path: Path, queues: QueueNames) -> None:
    """(With the daemon's logs as JSON lines: each line one object, the message's id on
    every line about it.)"""
    daemon = DaemonProc(tmp_path / "d", queues, {"AVATARCAST_LOG_FORMAT": "json"})
    try:
        _ready(daemon)
        with EventTap(queues.events) as tap:
            proc = subprocess.Popen(
                [sys.executable, "-m", "avatarcast", "say", "--wait", "--id", "long-1", LONG],
                cwd=tmp_path, env=_env(queues), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            tap.wait_for(lambda ev: any(e["event"] == "on_air" for e in ev), 60, "on air")
            publish(queues.control, {"type": "control", "command": "skip"})
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == EXIT_NOT_AIRED, out + err
            assert "not aired in full: skipped" in err
            assert [e["event"] for e in tap.of("long-1")][-1] == "skipped"
    finally:
        daemon.kill()
    lines = [json.loads(ln) for ln in daemon.log().splitlines() if ln.startswith("{")]
    assert len(lines) > 10
    assert not [ln for ln in daemon.log().splitlines() if ln[:4].isdigit()]  # no text lines
    assert all(set(ln) >= {"ts", "level", "logger", "message"} for ln in lines)
    about = [ln for ln in lines if "long-1" in ln["message"]]
    assert len(about) >= 4 and all(ln.get("id") == "long-1" for ln in about), about
    assert any(ln["message"].startswith("on air: long-1") for ln in about)


def test_say_without_a_daemon_says_nothing_consumes(tmp_path: Path, queues: QueueNames) -> None:
    plain = say(queues, tmp_path, "Is anybody there?")
    assert plain.returncode == EXIT_OK
    assert f"nothing consumes {queues.speak}" in plain.stderr
    waited = say(queues, tmp_path, "--wait", "--timeout", "2", "Anybody?")
    assert waited.returncode == EXIT_TIMED_OUT
    assert "not aired within 2 s" in waited.stderr and "Traceback" not in waited.stderr


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_metrics_move_while_on_air(tmp_path: Path, queues: QueueNames) -> None:
    # Two messages held at once: the rest of a backlog waits in RabbitMQ, where the queue
    # depth is read.
    daemon = DaemonProc(tmp_path / "d", queues, {"AVATARCAST_BROKER__PREFETCH": "2"})
    try:
        _ready(daemon)
        for i in range(6):
            publish(queues.speak, {"type": "speak", "id": f"q{i}", "text": LONG})
        daemon.wait_for(lambda s: s["on_air"] is not None, 60, "backlog on air")
        deadline = time.monotonic() + 15
        waiting = 0.0
        while time.monotonic() < deadline and waiting == 0:
            waiting = _scrape(daemon.health_port).get(("avatarcast_queue_messages", ()), 0.0)
            time.sleep(0.5)
        assert waiting >= 2, waiting  # six sent, at most two taken (one on air, one ahead)
        publish(queues.control, {"type": "control", "command": "clear"})
        daemon.wait_for(lambda s: s["state"] == "idle" and s["queued"] == 0, 30, "cleared")
        before = _scrape(daemon.health_port)
        states = {k[1][0][1]: v for k, v in before.items() if k[0] == "avatarcast_state"}
        assert sum(states.values()) == 1 and states["idle"] == 1, states
        done = say(queues, tmp_path, "--wait", "A sentence for the counters.")
        assert done.returncode == EXIT_OK, done.stderr
        # Where it went on air and finished, on the stream's clock ("... at stream 3.27 s").
        on_s, end_s = (float(m) for m in re.findall(r"at stream ([\d.]+) s", done.stdout))
        time.sleep(6)  # the queue depth is polled every 5 s
        after = _scrape(daemon.health_port)
    finally:
        daemon.kill()

    def get(m: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
            **labels: str) -> float:
        return m[(name, tuple(sorted(labels.items())))]

    sent = "avatarcast_frames_sent_total"
    assert get(after, sent) > get(before, sent) + 30
    assert get(after, "avatarcast_messages_total", outcome="aired") == 1
    assert get(after, "avatarcast_messages_total", outcome="cleared") >= 1
    assert get(after, "avatarcast_time_to_air_seconds_count") == 2  # q0, then the said one
    assert 0 < get(after, "avatarcast_time_to_air_seconds_sum") < 60
    assert get(after, "avatarcast_synthesis_seconds_count") == 1
    assert get(after, "avatarcast_render_seconds_count") == 1
    # The said message's speech: synthesis time over its length (how fast is for bench/),
    # and synthesis is part of its render (the only one counted); + 10 ms for rounding.
    rtf = get(after, "avatarcast_speech_real_time_factor")
    assert rtf > 0 and rtf * (end_s - on_s) <= get(after, "avatarcast_render_seconds_sum") + 0.01
    assert get(after, "avatarcast_encoder_up") == 1
    assert get(after, "avatarcast_encoder_uptime_seconds") > 1
    assert get(after, "avatarcast_broker_connected") == 1
    assert get(after, "avatarcast_queue_messages") == 0
    assert get(after, "avatarcast_backlog_messages") == 0
    assert get(after, "process_resident_memory_bytes") > 50 * 2**20
    assert get(after, "avatarcast_ffmpeg_resident_memory_bytes") > 2**20


def test_a_subscriber_that_fails_does_not_stop_the_others() -> None:
    seen: list[Event] = []

    def broken(_: Event) -> None:
        raise RuntimeError("boom")

    life = Lifecycle(30, lambda: (1, 90))
    life.subscribe(broken)
    life.subscribe(seen.append)
    event = life.emit("accepted", "m1", chars=5)
    assert seen == [event] and event.stream_s == 3.0 and event.fields == {"chars": 5}
    with pytest.raises(ValueError, match="unknown lifecycle event"):
        life.emit("exploded", "m1")


def test_metrics_count_outcomes_from_events() -> None:
    snap = Snapshot(state="talking", frames_sent=10, frames_late=0, frames_held=0,
                    frames_dropped=0, encoder_alive=True, encoder_restarts=0, encoder_uptime_s=1.0,
                    encoder_pid=None, broker_connected=True, backlog=1, queue_ready=None,
                    dead_lettered=0, events_dropped=0)
    metrics = Metrics(lambda: snap)
    life = Lifecycle(30, lambda: (1, 0))
    life.subscribe(metrics.observe)
    life.emit("accepted", "a", received_at=time.time() - 1.0)
    life.emit("on_air", "a")
    life.emit("finished", "a", render_s=0.5, tts_first_s=0.2, speech_rtf=0.1)
    life.emit("skipped", "b", reason="cleared")
    life.emit("failed", "c", reason="bad")
    text = metrics.exposition().decode()
    assert 'avatarcast_messages_total{outcome="aired"} 1.0' in text
    assert 'avatarcast_messages_total{outcome="cleared"} 1.0' in text
    assert 'avatarcast_messages_total{outcome="dead_lettered"} 1.0' in text
    assert "avatarcast_time_to_air_seconds_count 1.0" in text
    assert 'avatarcast_state{state="talking"} 1.0' in text


def _listener(exchange: str, queue: str, delete: bool = False) -> None:
    """A durable queue bound to every event (or, with `delete`, that queue removed)."""
    async def run() -> None:
        conn = await aio_pika.connect(AMQP)
        async with conn:
            ch = await conn.channel()
            if delete:
                await ch.queue_delete(queue)
                return
            ex = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            q = await ch.declare_queue(queue, durable=True)
            await q.bind(ex, routing_key="#")

    asyncio.run(run())


def test_events_of_an_outage_arrive_once_the_broker_is_back(
    tmp_path: Path, queues: QueueNames,
) -> None:
    """A message on air when the broker goes away finishes airing; its `finished` event waits
    in the daemon and reaches a listener's (durable) queue once the broker is back."""
    listen = queues.events + ".listen"
    daemon = DaemonProc(tmp_path / "d", queues,
                        {"AVATARCAST_BROKER__RECONNECT_INTERVAL_S": "0.5"})
    try:
        _ready(daemon)
        _listener(queues.events, listen)
        publish(queues.speak, {"type": "speak", "id": "out-1", "text": LONG})
        daemon.wait_for(lambda s: s["on_air"] == "out-1", 60, "on air")
        down_at = time.time()
        rabbitmqctl("stop_app")
        try:
            daemon.wait_for(lambda s: any(e["id"] == "out-1" for e in s["recent"]), 60,
                            "aired during the outage")
        finally:
            up_at = time.time()
            rabbitmqctl("start_app")
            wait_port(5672, 60)
        daemon.wait_for(lambda s: s["broker_connected"], 30, "reconnected")
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(e["event"] == "finished" for e in got):
            got += [json.loads(m.body) for m in drain(listen)]
            time.sleep(0.5)
        metrics = _scrape(daemon.health_port)
    finally:
        daemon.kill()
        _listener(queues.events, listen, delete=True)
    finished = [e for e in got if e["event"] == "finished" and e["id"] == "out-1"]
    assert len(finished) == 1, got
    # The event that arrives is the one held since the outage: stamped when out-1 finished
    # airing (after the broker went, before it was started again), not when it was sent.
    assert down_at < finished[0]["at"] < up_at, (down_at, finished[0], up_at)
    assert metrics[("avatarcast_events_dropped_total", ())] == 0


def test_a_clean_stop_sends_the_last_events_and_leaves_no_task_behind(
    tmp_path: Path, queues: QueueNames,
) -> None:
    """SIGTERM with a message on air: it finishes airing (the grace period), its `finished`
    event still goes out, and the daemon closes every task of its own accord."""
    daemon = DaemonProc(tmp_path / "d", queues, {})
    try:
        _ready(daemon)
        with EventTap(queues.events) as tap:
            publish(queues.speak, {"type": "speak", "id": "last-1", "text": LONG})
            daemon.wait_for(lambda s: s["on_air"] == "last-1", 60, "on air")
            assert daemon.stop() == 0
            tap.wait_for(lambda ev: any(e["id"] == "last-1" and e["event"] == "finished"
                                        for e in ev), 10, "the last finished event")
    finally:
        daemon.kill()
    assert "did not finish" not in daemon.log(), daemon.log()[-3000:]
