"""The disk a channel writes to, against the real daemon, FFmpeg and nginx-rtmp: recordings,
transcripts and WebVTT files rotate and are kept within their retention; a disk short of space
pauses the recording, says so on /healthz, and the stream goes on."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from harness.daemon import DaemonProc, QueueNames, Receiver, packets, publish
from harness.services import NginxRtmp

pytestmark = pytest.mark.services

KEEP = 3
PAUSED_S = 8.0  # how long the recording stays paused while the stream goes on


def _segments(folder: Path) -> dict[int, Path]:
    """The recording's files by segment number."""
    found = {}
    for p in folder.glob("program.*.mkv") if folder.exists() else []:
        if m := re.fullmatch(r"program\.(\d{5})\.mkv", p.name):
            found[int(m[1])] = p
    return found


def _poll(cond: object, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not callable(cond) or not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_recordings_and_captions_rotate_and_old_files_go(
    tmp_path: Path, queues: QueueNames
) -> None:
    rec, cap = tmp_path / "rec", tmp_path / "cap"
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__RECORD_PATH": str(rec / "program.mkv"),
        "AVATARCAST_OUTPUT__RECORD_SEGMENT_S": "1",  # cut at each keyframe: every 2 s
        "AVATARCAST_OUTPUT__RECORD_KEEP_FILES": str(KEEP),
        "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(cap / "transcript.jsonl"),
        "AVATARCAST_CAPTIONS__VTT_PATH": str(cap / "captions.vtt"),
        "AVATARCAST_CAPTIONS__FILE_MAX_MB": "0.000001",  # a byte: each text begins a file
        "AVATARCAST_CAPTIONS__KEEP_FILES": "2",
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        for i in range(3):
            publish(queues.speak, {"type": "speak", "id": f"t-{i}", "text": f"Text {i}."})
        daemon.wait_for(lambda s: all(daemon.outcomes(s).get(f"t-{i}") == "aired"
                                      for i in range(3)), 60, "three texts aired")

        def trimmed() -> bool:
            # Several files were cut, and the oldest deleted: just the newest KEEP are left.
            seg = _segments(rec)
            return bool(seg) and max(seg) >= KEEP + 2 and sorted(seg) == list(
                range(max(seg) - KEEP + 1, max(seg) + 1))

        _poll(trimmed, 30, f"the newest {KEEP} segments alone ({sorted(_segments(rec))})")
        _poll(lambda: len(list(cap.glob("transcript*.jsonl"))) == 2
              and len(list(cap.glob("captions*.vtt"))) == 2, 10,
              f"two files of each caption kind ({sorted(p.name for p in cap.iterdir())})")
        kept = sorted(_segments(rec).items())[0][1]  # finished: a newer one is being written
        assert daemon.stop() == 0, daemon.log()[-3000:]
    finally:
        daemon.kill()
    # A kept segment is a recording of its own: about one keyframe interval of both streams.
    v, a = packets(kept, "v")[:, 0], packets(kept, "a")[:, 0]
    assert 1.0 < float(v.max() - v.min()) < 3.0 and len(a) > 0
    # The transcript's path holds the newest text; the one before it is in the rotated file.
    current = cap / "transcript.jsonl"
    (rotated,) = set(cap.glob("transcript*.jsonl")) - {current}
    assert [json.loads(x)["id"] for x in current.read_text().splitlines()] == ["t-2"]
    assert [json.loads(x)["id"] for x in rotated.read_text().splitlines()] == ["t-1"]
    newest_vtt = max(cap.glob("captions*.vtt"), key=lambda p: p.stat().st_mtime)
    assert "Text 2" in newest_vtt.read_text() or "text 2" in newest_vtt.read_text().lower()


def test_a_disk_short_of_space_pauses_the_recording_not_the_stream(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    rec = tmp_path / "rec"
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([rtmp_server.url("avatar")]),
        "AVATARCAST_OUTPUT__RECORD_PATH": str(rec / "program.mkv"),
        "AVATARCAST_OUTPUT__MIN_FREE_MB": str(10**12),  # more than any disk here has
    })
    receiver: Receiver | None = None
    try:
        # (and the broker connected: /healthz says 503 until then, whatever the disk)
        st = daemon.wait_for(lambda s: s["disk_low"] is not None and s["outputs"][1]["paused"]
                             and s["outputs"][0]["live"] and s["broker_connected"], 30,
                             "the recording paused, RTMP on, the broker connected")
        receiver = Receiver(rtmp_server.url("avatar"), tmp_path / "got.flv")
        assert "recording" in st["disk_low"] and "state dir" in st["disk_low"]
        assert st["failed"] is None and [o["live"] for o in st["outputs"]] == [True, False]
        with urllib.request.urlopen(
                f"http://127.0.0.1:{daemon.health_port}/healthz", timeout=2) as r:
            assert r.status == 200  # the stream is healthy
        paused = time.monotonic()
        receiver.wait_receiving()
        got = (tmp_path / "got.flv").stat().st_size
        receiver.wait_receiving(got + 100_000)  # the stream goes on
        time.sleep(max(0.0, PAUSED_S - (time.monotonic() - paused)))
        assert "disk space low: " in daemon.log() and "output record paused" in daemon.log()
        assert daemon.stop() == 0, daemon.log()[-3000:]
    finally:
        daemon.kill()
        if receiver is not None:
            receiver.wait(5)
    # The recording holds at most what it got before the first check of the disk (the
    # daemon's first second or two), none of the PAUSED_S after: not even a keyframe.
    files = [p for p in rec.rglob("*") if p.stat().st_size > 0] if rec.exists() else []
    spans = [float(v.max() - v.min()) if len(v := packets(p, "v")[:, 0]) else 0.0
             for p in files]
    assert sum(spans) < PAUSED_S / 2, spans
