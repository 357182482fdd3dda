"""The daemon's own process dies or is stopped mid-utterance: SIGKILL, then a new process airs
the cut text again in full, once; SIGTERM lets the text on air finish within the grace period
and hands the backlog back to RabbitMQ."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from harness.daemon import DaemonProc, QueueNames, decode_audio, publish, queue_depth

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
    grace_s = 30.0
    transcript = tmp_path / "aired.jsonl"
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_SHUTDOWN__GRACE_S": str(grace_s),
        "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript),
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        for i in ("a", "b", "c"):
            speak(queues, i)
        daemon.wait_for(lambda s: s["on_air"] == "a", 30, "a on air")
        asked = time.monotonic()
        code = daemon.stop(timeout=grace_s + 30)
        took = time.monotonic() - asked
    finally:
        daemon.kill()
    log = daemon.log()
    # Within the grace period: the process ended cleanly before the grace ran out (past it,
    # the daemon requeues what is on air and only then exits, so it could not be out sooner;
    # the text needs a few seconds), having acked the text, and the rest is back in the queue.
    assert code == 0, log[-3000:]
    assert took < grace_s, f"{took:.1f} s"
    assert "grace period" not in log
    assert "settled a: aired" in log
    assert "settled b: requeued" in log and "settled c: requeued" in log
    assert queue_depth(queues.speak) == 2 and queue_depth(queues.dead) == 0
    # In full: every word of the text began on air, and the last one is in the recording,
    # spoken, before the stream ended (a cut text lists only the words begun before the cut,
    # and the recording of a stream that stopped mid-text ends before its last word).
    (entry,) = [json.loads(x) for x in transcript.read_text().splitlines()]
    assert entry["id"] == "a"
    assert " ".join(w[2] for w in entry["words"]) == TEXT.format("a")
    start, end = entry["words"][-1][:2]
    audio = decode_audio(tmp_path / "program.mkv")  # 48 kHz, float
    last_word = audio[int(start * 48_000) : int(end * 48_000)]
    assert len(last_word) == int(end * 48_000) - int(start * 48_000) > 0, (len(audio), end)
    assert float(np.sqrt(np.mean(last_word**2))) > 0.02  # speech, not the idle's silence
