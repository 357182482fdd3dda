"""A speech provider that hangs, returns garbage or fails, run as a real process in place of
espeak-ng: the daemon retries, falls back to the next provider, or dead-letters the text with
the reason, and the stream keeps its cadence throughout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.daemon import DaemonProc, QueueNames, drain, publish

pytestmark = pytest.mark.services

FAULTS = {
    "hang": "sleep 1000",
    "garbage": "head -c 20000 /dev/urandom",
    "fail": "echo 'synthesis exploded' >&2; exit 3",
}


def broken_espeak(tmp_path: Path, fault: str) -> Path:
    """espeak-ng that answers the daemon's start-up check and then misbehaves."""
    script = tmp_path / f"espeak-{fault}"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in *" ready") exec espeak-ng "$@";; esac\n'
        f"{FAULTS[fault]}\n"
    )
    script.chmod(0o755)
    return script


def run(tmp_path: Path, queues: QueueNames, fault: str, providers: list[str]) -> dict:  # type: ignore[type-arg]
    daemon = DaemonProc(tmp_path / fault, queues, {
        "AVATARCAST_SPEECH__PROVIDERS": json.dumps(providers),
        "AVATARCAST_SPEECH__ESPEAK_PATH": str(broken_espeak(tmp_path, fault)),
        "AVATARCAST_SPEECH__TIMEOUT_S": "1.5",
        "AVATARCAST_SPEECH__RETRY_ATTEMPTS": "2",
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        publish(queues.speak, {"type": "speak", "id": fault, "text": "Say this, somehow."})
        st = daemon.wait_for(lambda s: fault in daemon.outcomes(s), 60, "settled")
        st = daemon.wait_for(lambda s: s["state"] == "idle", 10, "idle again")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert st["frames_dropped"] == 0, st
    return {"outcome": daemon.outcomes(st)[fault], "log": daemon.log()}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_broken_only_provider_dead_letters_with_the_reason(
    tmp_path: Path, queues: QueueNames, fault: str
) -> None:
    result = run(tmp_path, queues, fault, ["espeak"])
    assert result["outcome"] == "failed"
    (dead,) = drain(queues.dead)
    reason = str((dead.headers or {}).get("x-avatarcast-reason"))
    expected = {"hang": "timed out", "garbage": "no WAV audio", "fail": "synthesis exploded"}
    assert expected[fault] in reason, reason
    # Retried before giving up: these faults may pass.
    assert result["log"].count("speech provider espeak failed") == 1


def test_a_hanging_provider_falls_back_to_the_next(tmp_path: Path, queues: QueueNames) -> None:
    result = run(tmp_path, queues, "hang", ["espeak", "piper"])
    assert result["outcome"] == "aired"
    assert "speech provider espeak failed" in result["log"]
    assert drain(queues.dead) == []
