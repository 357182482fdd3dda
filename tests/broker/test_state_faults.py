"""The state dir after a crash or a power cut, seen from outside: its small files torn (a line
cut in the middle of a character, zeros where a block was never written, a JSON object cut
short). The next process starts, says what it skipped, airs, and still knows every message it
had handled, ids with line separators inside included. And what the state dir counts as a
death of the process is one: an orderly stop (SIGTERM, a fleet's lease lost) while a render
hangs is not."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.daemon import DaemonProc, QueueNames, drain, publish, queue_depth

pytestmark = pytest.mark.services

# One id with a Unicode line separator inside: once remembered as its two halves, so its
# redelivery aired again and a later message with the id of a half was never aired.
SPLIT = "half-a\u2028half-b"


TEXT = "Hello there."


def speak(q: QueueNames, msg_id: str) -> None:
    publish(q.speak, {"type": "speak", "id": msg_id, "text": TEXT})


def test_a_torn_state_dir_starts_and_remembers_what_it_handled(
    tmp_path: Path, queues: QueueNames
) -> None:
    state = tmp_path / "state"
    env = {"AVATARCAST_STATE_DIR": str(state)}
    first = DaemonProc(tmp_path / "first", queues, env)
    try:
        first.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        speak(queues, SPLIT)
        first.wait_for(lambda s: first.outcomes(s).get(SPLIT) == "aired", 60, "aired")
        assert first.stop() == 0
    finally:
        first.kill()

    # What a power cut leaves: each small file of the state dir torn at its end.
    with (state / "handled-ids.log").open("ab") as f:
        f.write(b'"torn-caf\xc3')  # cut inside a character, no newline
    (state / "attempts.json").write_bytes(b'{"x": 1, "y"' + b"\0" * 512)

    second = DaemonProc(tmp_path / "second", queues, env)
    try:
        second.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        speak(queues, SPLIT)  # a redelivery of what aired: acked, not aired again
        speak(queues, "half-b")  # a new message: airs
        st = second.wait_for(lambda s: "half-b" in second.outcomes(s), 60, "half-b settled")
        assert second.stop() == 0
    finally:
        second.kill()
    log = second.log()
    assert "unreadable line(s) skipped" in log and "ignoring unreadable" in log, log[-3000:]
    assert f"duplicate delivery of {SPLIT} (already handled)" in log, log[-3000:]
    assert [(e["id"], e["outcome"]) for e in st["recent"]] == [("half-b", "aired")]
    assert queue_depth(queues.speak) == 0


def test_an_orderly_stop_while_a_render_hangs_is_not_a_death(
    tmp_path: Path, queues: QueueNames
) -> None:
    """With crash_limit 1, a stop while the message's speech hangs was counted as the process
    dying with it: the next start dead-lettered a sound text that never aired."""
    hang_once = tmp_path / "espeak-hang-once"
    hang_once.write_text(
        "#!/bin/sh\n"  # hangs the first time it is asked to say the text, then speaks
        f'case "$*" in *"{TEXT}"*) if [ ! -e "{tmp_path}/hung" ]; then\n'
        f'  touch "{tmp_path}/hung"; exec sleep 600; fi;; esac\n'
        'exec espeak-ng "$@"\n')
    hang_once.chmod(0o755)
    env = {
        "AVATARCAST_STATE_DIR": str(tmp_path / "state"),
        "AVATARCAST_BROKER__CRASH_LIMIT": "1",
        "AVATARCAST_SPEECH__PROVIDERS": '["espeak"]',
        "AVATARCAST_SPEECH__ESPEAK_PATH": str(hang_once),
        "AVATARCAST_SPEECH__TIMEOUT_S": "120",  # the render outlives the stop
        "AVATARCAST_SHUTDOWN__GRACE_S": "1",
    }
    first = DaemonProc(tmp_path / "first", queues, env)
    try:
        first.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        speak(queues, "sound")
        first.wait_for(lambda s: (s.get("rendering") or {}).get("id") == "sound", 30,
                       "rendering")
        assert first.stop(timeout=60) == 0
    finally:
        first.kill()
    assert (tmp_path / "hung").exists()

    second = DaemonProc(tmp_path / "second", queues, env)
    try:
        st = second.wait_for(lambda s: "sound" in second.outcomes(s) or s["dead_lettered"], 60,
                             "sound settled")
        assert second.stop() == 0
    finally:
        second.kill()
    assert second.outcomes(st).get("sound") == "aired", second.log()[-3000:]
    assert drain(queues.dead) == []


def test_a_pause_and_a_set_outlive_the_daemon(tmp_path: Path, queues: QueueNames) -> None:
    """`pause` and `set` are kept in the broker, not in the process: a restart (or the
    channel's next owner, on any machine: a new state dir here) starts paused, in the look it
    was set to, and a paused backlog waits for `resume`."""
    first = DaemonProc(tmp_path / "first", queues, {})
    try:
        first.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        publish(queues.control, {"type": "control", "command": "set", "animator": "still"})
        publish(queues.control, {"type": "control", "command": "pause"})
        first.wait_for(lambda s: s["paused"] and s["animator"] == "still", 10, "paused, still")
        assert first.stop() == 0
    finally:
        first.kill()
    speak(queues, "held-1")
    speak(queues, "held-2")

    second = DaemonProc(tmp_path / "second", queues, {})
    try:
        st = second.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        assert st["paused"] and st["animator"] == "still"
        second.wait_for(lambda s: queue_depth(queues.speak) == 0 and s["rendering"] is None,
                        60, "both taken and rendered")
        time.sleep(2)  # everything else is ready: a paused channel still airs nothing
        st = second.status()
        assert st is not None and st["recent"] == [] and st["on_air"] is None
        publish(queues.control, {"type": "control", "command": "resume"})
        st = second.wait_for(lambda s: {"held-1", "held-2"} <= set(second.outcomes(s)), 60,
                             "both aired after resume")
        assert second.stop() == 0
    finally:
        second.kill()
    assert [(e["id"], e["outcome"]) for e in st["recent"]] == [("held-1", "aired"),
                                                             ("held-2", "aired")]


def _fails_unhealthy(daemon: DaemonProc, what: str) -> dict[str, Any]:
    """The status once the daemon says it failed (503 naming `what`); then it exits 1."""
    st = daemon.wait_for(lambda s: bool(s.get("failed")), 60, f"{what} failed")
    assert what in st["failed"], st["failed"]
    with pytest.raises(urllib.error.HTTPError) as unhealthy:
        urllib.request.urlopen(f"http://127.0.0.1:{daemon.health_port}/healthz", timeout=5)
    assert unhealthy.value.code == 503
    assert daemon.proc.wait(60) == 1, daemon.log()[-3000:]
    return st


def test_a_broken_state_dir_stops_the_daemon_unhealthy_and_loses_nothing(
    tmp_path: Path, queues: QueueNames
) -> None:
    """The render worker and the settlements write to the state dir. When that fails (the disk
    full, a path that is not a file), the daemon once went on accepting texts and airing none,
    /healthz 200: now /healthz says 503 naming the task, the daemon exits 1 for its supervisor
    to start it again, and the message goes back to the queue."""
    state = tmp_path / "state"
    env = {"AVATARCAST_STATE_DIR": str(state), "AVATARCAST_SHUTDOWN__GRACE_S": "2"}
    # 1. The render worker cannot note that it takes a message up.
    (state / "attempts.json.tmp").mkdir(parents=True)
    first = DaemonProc(tmp_path / "first", queues, env)
    try:
        first.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        speak(queues, "m")
        _fails_unhealthy(first, "render-worker")
    finally:
        first.kill()
    assert queue_depth(queues.speak) == 1  # back in the queue
    (state / "attempts.json.tmp").rmdir()

    # 2. The disk is full when the aired message's id is to be kept.
    second = DaemonProc(tmp_path / "second", queues, env)
    try:
        second.wait_for(lambda s: (s.get("rendering") or {}).get("id") == "m" or s["on_air"],
                        60, "m taken up")
        (state / "handled-ids.log").unlink(missing_ok=True)
        (state / "handled-ids.log").symlink_to("/dev/full")  # writes: ENOSPC
        _fails_unhealthy(second, "No space left on device")
    finally:
        second.kill()
    assert "settled m: aired" not in second.log()
    assert queue_depth(queues.speak) == 1  # not acked: its id could not be kept
    (state / "handled-ids.log").unlink()

    # 3. Repaired: it airs, once.
    third = DaemonProc(tmp_path / "third", queues, env)
    try:
        st = third.wait_for(lambda s: "m" in third.outcomes(s), 60, "m settled")
        assert third.stop() == 0
    finally:
        third.kill()
    assert third.outcomes(st)["m"] == "aired" and queue_depth(queues.speak) == 0
