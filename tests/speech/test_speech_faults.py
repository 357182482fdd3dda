"""A speech provider that hangs, returns garbage or fails, run as a real process in place of
espeak-ng: the daemon retries, falls back to the next provider, or dead-letters the text with
the reason, and the next text airs; the stream keeps its cadence throughout."""

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
BROKEN = "Say this, somehow."  # the text the broken provider cannot say
FINE = "And now this one."  # a text it says, as espeak-ng would
ATTEMPTS = 2  # speech.retry_attempts


def broken_espeak(tmp_path: Path, fault: str) -> tuple[Path, Path]:
    """espeak-ng that answers the daemon's start-up check and says other texts, but misbehaves
    on BROKEN; each time it is asked for BROKEN is a line in the calls file it returns."""
    script, calls = tmp_path / f"espeak-{fault}", tmp_path / f"espeak-{fault}.calls"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *"{BROKEN}") echo attempt >> "{calls}"; {FAULTS[fault]};; esac\n'
        'exec espeak-ng "$@"\n'
    )
    script.chmod(0o755)
    return script, calls


def run(tmp_path: Path, queues: QueueNames, fault: str, providers: list[str],
        then: str | None = None) -> dict:  # type: ignore[type-arg]
    """BROKEN published, settled; then, if given, `then` published and settled too."""
    script, calls = broken_espeak(tmp_path, fault)
    daemon = DaemonProc(tmp_path / fault, queues, {
        "AVATARCAST_SPEECH__PROVIDERS": json.dumps(providers),
        "AVATARCAST_SPEECH__ESPEAK_PATH": str(script),
        "AVATARCAST_SPEECH__TIMEOUT_S": "1.5",
        "AVATARCAST_SPEECH__RETRY_ATTEMPTS": str(ATTEMPTS),
    })
    ids = [fault] + ([f"{fault}-then"] if then else [])
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        publish(queues.speak, {"type": "speak", "id": fault, "text": BROKEN})
        daemon.wait_for(lambda s: fault in daemon.outcomes(s), 60, "settled")
        if then:
            publish(queues.speak, {"type": "speak", "id": ids[1], "text": then})
        st = daemon.wait_for(lambda s: set(ids) <= set(daemon.outcomes(s)), 60, "all settled")
        st = daemon.wait_for(lambda s: s["state"] == "idle", 10, "idle again")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert st["frames_dropped"] == 0, st
    return {"outcomes": daemon.outcomes(st), "recent": st["recent"], "log": daemon.log(),
            "attempts": len(calls.read_text().splitlines()) if calls.exists() else 0}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_broken_only_provider_dead_letters_with_the_reason_and_the_next_text_airs(
    tmp_path: Path, queues: QueueNames, fault: str
) -> None:
    result = run(tmp_path, queues, fault, ["espeak"], then=FINE)
    assert result["outcomes"] == {fault: "failed", f"{fault}-then": "aired"}, result["recent"]
    (dead,) = drain(queues.dead)
    assert json.loads(dead.body)["id"] == fault
    reason = str((dead.headers or {}).get("x-avatarcast-reason"))
    expected = {"hang": "timed out", "garbage": "no WAV audio", "fail": "synthesis exploded"}
    assert expected[fault] in reason, reason
    # Retried before giving up (these faults may pass): the provider was asked for the text
    # once per attempt, and the give-up reported once.
    assert result["attempts"] == ATTEMPTS
    assert result["log"].count("speech provider espeak failed") == 1
    then = next(e for e in result["recent"] if e["id"] == f"{fault}-then")
    assert then["stream_last"] - then["stream_first"] + 1 == then["frames"] > 0  # in full


def test_a_hanging_provider_falls_back_to_the_next(tmp_path: Path, queues: QueueNames) -> None:
    result = run(tmp_path, queues, "hang", ["espeak", "piper"])
    assert result["outcomes"] == {"hang": "aired"}
    assert result["attempts"] == ATTEMPTS  # espeak retried, then piper spoke
    assert "speech provider espeak failed" in result["log"]
    assert drain(queues.dead) == []
