"""The daemon's own process dies or is stopped mid-utterance: SIGKILL, then a new process airs
the cut text again in full, once; SIGTERM lets the text on air finish within the grace period
and hands the backlog back to RabbitMQ."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.daemon import DaemonProc, QueueNames, publish, queue_depth

pytestmark = pytest.mark.services

TEXT = "Message {}. Long enough to be cut in the middle, and then to be heard once more in full."


def speak(q: QueueNames, msg_id: str) -> None:
    publish(q.speak, {"type": "speak", "id": msg_id, "text": TEXT.format(msg_id)})


def in_full(entry: dict[str, int]) -> bool:
    return entry["stream_last"] - entry["stream_first"] + 1 == entry["frames"]


def test_sigkill_mid_utterance_airs_it_again_in_full_once(
    tmp_path: Path, queues: QueueNames
) -> None:
    env = {"AVATARCAST_STATE_DIR": str(tmp_path / "state")}
    first = DaemonProc(tmp_path / "first", queues, env)
    try:
        first.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        speak(queues, "a")
        speak(queues, "b")
        first.wait_for(lambda s: s["on_air"] == "a", 30, "a on air")
        first.wait_for(lambda s: s["frames_sent"] > 0 and s["state"] == "talking", 10, "talking")
    finally:
        first.kill()
    assert "settled a" not in first.log()
    second = DaemonProc(tmp_path / "second", queues, env)
    try:
        st = second.wait_for(
            lambda s: {"a", "b"} <= set(second.outcomes(s)), 90, "a and b settled"
        )
        assert second.stop() == 0
    finally:
        second.kill()
    entries = {e["id"]: e for e in st["recent"]}
    assert [e["id"] for e in st["recent"]] == ["a", "b"]  # in order, each once
    assert all(e["outcome"] == "aired" and in_full(e) for e in entries.values())
    assert queue_depth(queues.speak) == 0


def test_sigterm_finishes_what_is_on_air_and_requeues_the_rest(
    tmp_path: Path, queues: QueueNames
) -> None:
    daemon = DaemonProc(tmp_path, queues, {"AVATARCAST_SHUTDOWN__GRACE_S": "30"})
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        for i in ("a", "b", "c"):
            speak(queues, i)
        daemon.wait_for(lambda s: s["on_air"] == "a", 30, "a on air")
        assert daemon.stop(timeout=60) == 0
    finally:
        daemon.kill()
    log = daemon.log()
    assert "settled a: aired" in log
    assert "settled b: requeued" in log and "settled c: requeued" in log
    assert queue_depth(queues.speak) == 2
