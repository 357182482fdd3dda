"""Controls against a real daemon with a backlog: skip moves on, clear empties the backlog,
an interrupt cuts in, and a stop past the grace period requeues what was on air."""

from __future__ import annotations

import pytest

from harness.daemon import DaemonProc, QueueNames, decode_audio, publish, queue_depth, rms_windows

pytestmark = pytest.mark.services

LONG = (
    "This is a long message that keeps the avatar talking for a while. "
    "It has several sentences, so that there is time to act on it. "
    "Nothing in it matters, it only has to last."
)

# Many sentences: still being synthesized and rendered seconds after it was taken up.
VERY_LONG = " ".join(f"Sentence number {i} of a message that takes a long time to render."
                     for i in range(30))
# A long first sentence: its speech takes a while to synthesize, the cut must not wait for it.
URGENT = ("Breaking news, and this interrupting message has a rather long first sentence, so "
          "that synthesizing its speech takes a while before anything of it can go on air.")


def speak(q: QueueNames, msg_id: str, text: str = LONG, **extra: object) -> None:
    publish(q.speak, {"type": "speak", "id": msg_id, "text": text, **extra})


def control(q: QueueNames, command: str) -> None:
    publish(q.control, {"type": "control", "command": command})


def test_skip_clear_interrupt_and_requeue_on_stop(tmp_path, queues: QueueNames) -> None:  # type: ignore[no-untyped-def]
    rec = tmp_path / "program.mkv"
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_OUTPUT__RECORD_PATH": str(rec),
        "AVATARCAST_SHUTDOWN__GRACE_S": "1",
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        for i in (1, 2, 3):
            speak(queues, f"long{i}")
        daemon.wait_for(lambda s: s["on_air"] == "long1", 30, "long1 on air")

        control(queues, "skip")
        st = daemon.wait_for(lambda s: s["on_air"] == "long2", 10, "skip to long2")
        assert daemon.outcomes(st)["long1"] == "skipped"

        control(queues, "clear")
        st = daemon.wait_for(
            lambda s: s["state"] == "idle" and s["queued"] == 0, 10, "backlog cleared"
        )
        assert daemon.outcomes(st) == {"long1": "skipped", "long2": "cleared", "long3": "cleared"}

        speak(queues, "long4")
        daemon.wait_for(lambda s: s["on_air"] == "long4", 30, "long4 on air")
        speak(queues, "long5", VERY_LONG)  # rendered ahead while long4 is on air
        daemon.wait_for(
            lambda s: (s["rendering"] or {}).get("id") == "long5" and s["rendering"]["frames"],
            30, "long5 partly rendered",
        )
        speak(queues, "urgent", URGENT, interrupt=True)
        st = daemon.wait_for(lambda s: daemon.outcomes(s).get("urgent") == "aired", 60, "urgent")
        entries = {e["id"]: e for e in st["recent"]}
        assert daemon.outcomes(st)["long4"] == "interrupted"
        # Cut when the interrupt arrived, before its own speech was even synthesized.
        assert entries["long4"]["settled_at"] < entries["urgent"]["tts_first_at"]
        # long5's rendering was stopped for it: not cut, not lost, it airs after the urgent one.
        assert "long5: rendering stopped for interrupt urgent" in daemon.log()
        assert "long5 back in the backlog" in daemon.log()
        st = daemon.wait_for(lambda s: s["on_air"] == "long5", 60, "long5 on air")
        control(queues, "skip")
        st = daemon.wait_for(lambda s: daemon.outcomes(s).get("long5") == "skipped", 10, "skip")
        entries = {e["id"]: e for e in st["recent"]}
        assert [e["id"] for e in st["recent"]].count("long5") == 1
        assert entries["long5"]["stream_first"] > entries["urgent"]["stream_last"]
        # Cut, not finished: each left the air before its last frame.
        for cut in ("long1", "long2", "long4"):
            e = entries[cut]
            assert e["stream_last"] - e["stream_first"] + 1 < e["frames"]

        control(queues, "pause")
        speak(queues, "held", "This waits for resume.")
        daemon.wait_for(lambda s: s["paused"] and s["queued"] == 1, 10, "held while paused")
        st = daemon.status()
        assert st is not None and st["on_air"] is None
        control(queues, "resume")
        daemon.wait_for(lambda s: daemon.outcomes(s).get("held") == "aired", 30, "held aired")

        speak(queues, "urgent", "Breaking news.")  # a duplicate id: acked, not aired again
        speak(queues, "cut-by-stop")
        st = daemon.wait_for(lambda s: s["on_air"] == "cut-by-stop", 30, "last on air")
        assert [e["id"] for e in st["recent"]].count("urgent") == 1
        assert "duplicate delivery of urgent (already handled): acked, not aired" in daemon.log()
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()

    # Everything handled was acked; the one cut by the stop went back to the queue.
    assert queue_depth(queues.speak) == 1
    # The recording shows the clear: silence from the cut of long2 until long4 begins.
    samples = decode_audio(rec)
    rms = rms_windows(samples, 48000, 0.02)
    # (the slice after the cut fades out; AAC spreads it over one more frame)
    quiet_from = (entries["long2"]["stream_last"] + 4) / 30
    quiet_to = entries["long4"]["stream_first"] / 30 - 0.05
    quiet = rms[int(quiet_from / 0.02) : int(quiet_to / 0.02)]
    assert quiet.size >= 5 and quiet.max() < 0.002
    # ...and speech where the interrupting message aired.
    rms50 = rms_windows(samples, 48000, 0.05)
    first, last = entries["urgent"]["stream_first"], entries["urgent"]["stream_last"]
    talk = rms50[int(first / 30 / 0.05) + 2 : int(last / 30 / 0.05) - 2]
    assert talk.size >= 5 and (talk > 0.01).mean() > 0.4
