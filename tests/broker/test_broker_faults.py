"""Faults around the broker, against the real daemon process and a real RabbitMQ: a broker
restart with a backlog followed by a crash, hostile bodies, and a message that keeps killing
the daemon. What counts is what the broker and the daemon's own account of its stream show:
every text aired exactly once, nothing left unacked, every refusal dead-lettered with a reason.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatarcast.broker.messages import (
    MAX_TEXT_CHARS,
    ControlMessage,
    MessageError,
    parse_message,
)
from harness.arrivals import STALL_S, Arrivals, breaks, drift, largest_gap, past_start
from harness.daemon import (
    DaemonProc,
    QueueNames,
    aired,
    delete_queues,
    drain,
    publish,
    queue_depth,
)
from harness.services import NginxRtmp, port_open, rabbitmqctl, wait_port

pytestmark = pytest.mark.services
FPS = 30

TEXT = "Message {}. It has two short sentences, so it lasts a few seconds on air."


def test_broker_restart_then_crash_loses_nothing(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    state = tmp_path / "state"
    url = rtmp_server.url("avatar")
    watch = Arrivals(url, idle_timeout_s=10)  # there first: it sees the stream from its start
    first = DaemonProc(tmp_path / "first", queues, {
        "AVATARCAST_STATE_DIR": str(state),
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url]),
        "AVATARCAST_BROKER__RECONNECT_INTERVAL_S": "0.5",
    })
    ids = [f"m{i}" for i in range(1, 7)]
    try:
        first.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        for i in ids:
            publish(queues.speak, {"type": "speak", "id": i, "text": TEXT.format(i)})
        first.wait_for(lambda s: s["on_air"] == "m1", 30, "m1 on air")
        rabbitmqctl("stop_app")
        try:
            time.sleep(8)
        finally:
            rabbitmqctl("start_app")
            wait_port(5672, 60)
        first.wait_for(lambda s: s["broker_connected"], 30, "reconnected")
        time.sleep(3)  # the redeliveries arrive; nothing may be acked that has not aired
        sent_before_kill = first.status()
        first.kill()
    finally:
        first.kill()
        rows = watch.stop()
    assert sent_before_kill is not None and sent_before_kill["frames_dropped"] == 0
    # The stream never stopped while the daemon lived, as a viewer got it: every frame, in
    # order (a lost packet breaks the count), on air through the outage ...
    assert breaks(rows, FPS).size == 0, f"frames lost at {breaks(rows, FPS)}"
    assert float(rows[-1, 0] - rows[0, 0]) > 12
    # ... and in time: the timestamps count frames, so a daemon that froze and went on would
    # leave them consecutive; the arrivals would not (a hole, and the stream's clock falling
    # behind the wall clock for good). STALL_S: a stall of a second or more, not jitter.
    paced = past_start(rows)
    gap, moved = largest_gap(paced), drift(paced)
    print(f"largest wait between frames {gap:.3f} s, stream clock vs wall clock {moved:.3f} s")
    assert gap < STALL_S and moved < STALL_S

    second = DaemonProc(tmp_path / "second", queues, {
        "AVATARCAST_STATE_DIR": str(state),
        "AVATARCAST_OUTPUT__RECORD_PATH": str(tmp_path / "second.mkv"),
    })
    try:
        second.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        second.wait_for(lambda s: s["queued"] == 0 and queue_depth(queues.speak) == 0,
                        120, "backlog aired")
        assert second.stop() == 0, second.log()
    finally:
        second.kill()
    logs = (first.log(), second.log())
    assert sorted(aired(*logs)) == ids, "\n".join(logs)[-6000:]
    assert queue_depth(queues.speak) == 0 and queue_depth(queues.dead) == 0
    assert "acked, not aired" not in first.log().split("re-established")[-1].replace(
        "(already handled): acked, not aired", "")


def test_a_daemon_stops_while_the_broker_is_away(tmp_path: Path, queues: QueueNames) -> None:
    """SIGTERM during a broker outage: the daemon stops (what it took goes back to the queue
    with the connection), instead of waiting for the broker to come back."""
    daemon = DaemonProc(tmp_path / "d", queues, {"AVATARCAST_BROKER__RECONNECT_INTERVAL_S": "0.5"})
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        publish(queues.speak, {"type": "speak", "id": "away", "text": TEXT.format(1)})
        daemon.wait_for(lambda s: s["on_air"] == "away", 30, "on air")
        rabbitmqctl("stop_app")
        try:
            daemon.wait_for(lambda s: not s["broker_connected"], 30, "the broker gone")
            assert daemon.stop(timeout=60) == 0, daemon.log()[-3000:]
        finally:
            rabbitmqctl("start_app")
            wait_port(5672, 60)
    finally:
        daemon.kill()
    assert queue_depth(queues.speak) == 1  # not aired to its end: back in the queue


HOSTILE: list[bytes] = [
    b"[" * 30_000 + b"]" * 30_000,
    b'{"type": "speak", "id": "deep", "text": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"type": "speak", "id": "num", "text": "Hi", "v": ' + b"9" * 10_000 + b"}",
    b'{"type": "speak", "id": "sur", "text": "lone \\ud800 surrogate"}',
    b'{"type": "speak", "id": "ctl", "text": "nul \\u0000 byte"}',
    b'{"type": "speak", "id": "yes", "text": "Hi", "interrupt": "yes"}',
    b'{"type": "speak", "id": "dup", "id": "dup2", "text": "Hi"}',
    b'{"type": "control", "command": "skip"}',  # a control on the speak queue
    b"\xff\xfe\x00garbage",
    b"",
    b"null",
]


def test_hostile_bodies_are_dead_lettered_with_a_reason(
    tmp_path: Path, queues: QueueNames
) -> None:
    daemon = DaemonProc(tmp_path, queues, {})
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        for i, body in enumerate(HOSTILE):
            publish(queues.speak, body, message_id=f"hostile-{i}")
        publish(queues.control, b'{"type": "control", "command": "explode"}', "bad-control")
        publish(queues.speak, {"type": "speak", "id": "good", "text": "Still here."})
        st = daemon.wait_for(lambda s: daemon.outcomes(s).get("good") == "aired", 60, "good")
        assert st["dead_lettered"] == len(HOSTILE) + 1
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()
    # Nothing left unsettled: a clean stop requeues what is unacked, and nothing came back.
    assert queue_depth(queues.speak) == 0 and queue_depth(queues.control) == 0
    dead = drain(queues.dead)
    reasons = {m.message_id: str((m.headers or {}).get("x-avatarcast-reason")) for m in dead}
    assert set(reasons) == {f"hostile-{i}" for i in range(len(HOSTILE))} | {"bad-control"}
    assert "nested too deeply" in reasons["hostile-0"]
    assert "too large" in reasons["hostile-2"]
    assert "interrupt" in reasons["hostile-6"]
    assert "control message sent to the speak queue" in reasons["hostile-8"]
    assert all(r and r != "None" for r in reasons.values()), reasons
    assert "Traceback" not in daemon.log()


def test_a_message_that_keeps_killing_the_daemon_is_dead_lettered(
    tmp_path: Path, queues: QueueNames
) -> None:
    state = tmp_path / "state"
    env = {"AVATARCAST_STATE_DIR": str(state), "AVATARCAST_BROKER__CRASH_LIMIT": "2"}
    poison = "A message that the daemon never survives, however often it is delivered."
    for life in range(2):
        daemon = DaemonProc(tmp_path / f"life{life}", queues, env)
        try:
            if life == 0:  # the daemon declares the queues
                daemon.wait_for(lambda s: s["broker_connected"], 60, "connected")
                publish(queues.speak, {"type": "speak", "id": "poison", "text": poison})
            daemon.wait_for(
                lambda s: s["on_air"] == "poison" or (s["rendering"] or {}).get("id") == "poison",
                60, "poison taken up",
            )
        finally:
            daemon.kill()  # what an out-of-memory kill or a crash in a native library does
    assert queue_depth(queues.speak) == 1  # unacked, so RabbitMQ has it back
    last = DaemonProc(tmp_path / "last", queues, env)
    try:
        last.wait_for(lambda s: s["dead_lettered"] == 1, 60, "poison dead-lettered")
        publish(queues.speak, {"type": "speak", "id": "after", "text": "Still on air."})
        last.wait_for(lambda s: last.outcomes(s).get("after") == "aired", 60, "after")
        assert last.stop() == 0
    finally:
        last.kill()
    (dead,) = drain(queues.dead)
    reason = str((dead.headers or {}).get("x-avatarcast-reason"))
    assert b'"id": "poison"' in dead.body
    assert "died 2 times" in reason, reason
    assert "poison" not in aired(last.log())
    assert port_open(5672)


_any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=8,
)
_bodies = st.one_of(
    st.binary(max_size=200),
    _any_json.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"type": st.just("speak")},
        optional={"id": _any_json, "text": st.text(max_size=40) | _any_json,
                  "interrupt": _any_json, "voice": _any_json, "v": _any_json},
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(MAX_TEXT_CHARS - 2, MAX_TEXT_CHARS + 2).map(
        lambda n: json.dumps({"type": "speak", "id": f"len-{n}", "text": "a" * n}).encode()),
)


def _refused(body: bytes) -> bool:
    """Whether the speak queue must refuse this body (never a text to air)."""
    try:
        return isinstance(parse_message(body), ControlMessage)
    except MessageError:
        return True


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory, rabbitmq: None) -> Any:
    q = QueueNames.unique()
    daemon = DaemonProc(tmp_path_factory.mktemp("fuzz"), q, {})
    daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
    yield daemon, q
    daemon.kill()
    delete_queues(q)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=_bodies)
def test_generated_bodies_are_aired_or_dead_lettered(fuzz_daemon: Any, body: bytes) -> None:
    daemon, q = fuzz_daemon
    before = daemon.status()
    assert before is not None
    dups = daemon.log().count("duplicate delivery")
    publish(q.speak, body, message_id=None)

    def settled(s: dict[str, Any]) -> bool:
        return (s["dead_lettered"] > before["dead_lettered"]
                or len(s["recent"]) > len(before["recent"])
                or s["recent"][-1:] != before["recent"][-1:]
                or daemon.log().count("duplicate delivery") > dups)

    st_ = daemon.wait_for(lambda s: settled(s) or s["on_air"] is not None, 90,
                          f"{body[:80]!r} settled or on air")
    if not settled(st_):  # a valid text airing (the longest, a minute or more): move on
        publish(q.control, {"type": "control", "command": "skip"})
        daemon.wait_for(settled, 30, f"{body[:80]!r} skipped")
    after = daemon.status()
    assert after is not None
    dead = drain(q.dead)
    # A body that can never be a text is refused: it is in the dead-letter queue. Any other
    # dead-letter (a text that failed) is one the daemon counted; nothing else is there.
    grew = after["dead_lettered"] - before["dead_lettered"]
    expected = 1 if _refused(body) else grew
    assert len(dead) == grew == expected <= 1, (body[:80], grew, [m.body[:80] for m in dead])
    for m in dead:  # every refusal carries its reason
        assert (m.headers or {}).get("x-avatarcast-reason"), m.body[:80]
    assert "Traceback" not in daemon.log()
