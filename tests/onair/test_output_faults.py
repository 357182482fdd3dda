"""The RTMP server goes away and comes back: the daemon keeps its clock, backs off without
hammering, is back on air within a couple of seconds of the server's return (not at the end of
a long backoff), and the text that the outage cut airs again, once, in full."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.daemon import DaemonProc, QueueNames, Receiver, packets, publish
from harness.services import NginxRtmp

pytestmark = pytest.mark.services

TEXT = ("The server will vanish while this is being said. It has to come back, and then the "
        "whole of this text has to be heard again, from the start.")


def first_packet(url: str, limit_s: float) -> float:
    """When a client playing `url` is handed its first packet (time.monotonic)."""
    proc = subprocess.Popen(
        ["ffprobe", "-v", "error", "-rw_timeout", "3000000", "-fflags", "nobuffer",
         "-probesize", "32", "-analyzeduration", "0", "-show_entries", "packet=pts_time",
         "-of", "csv=p=0", url],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    timer = threading.Timer(limit_s, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        at = time.monotonic()
        assert line, "no packet from the RTMP server"
        return at
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()


def test_rtmp_server_down_and_back(tmp_path: Path, queues: QueueNames,
                                   rtmp_server: NginxRtmp) -> None:
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": f'["{rtmp_server.url("avatar")}"]',
        "AVATARCAST_OUTPUT__RESTART_BACKOFF_MIN_S": "0.5",
        # A long backoff, as after hours of outage: the return must not wait for it.
        "AVATARCAST_OUTPUT__RESTART_BACKOFF_MAX_S": "30",
    })
    try:
        st = daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        assert st["last_error"] is None, st["last_error"]  # FFmpeg's warnings are not errors
        publish(queues.speak, {"type": "speak", "id": "cut", "text": TEXT})
        daemon.wait_for(lambda s: s["on_air"] == "cut", 30, "on air")
        time.sleep(1)
        rtmp_server.stop()
        daemon.wait_for(lambda s: s["state"] == "error", 15, "outage seen")
        daemon.wait_for_backoff(8, 60)  # as after a long outage: the return must not wait
        st = daemon.status()
        assert st is not None and st["frames_dropped"] > 0  # the clock kept running
        assert st["encoder_restarts"] >= 4
        assert st["last_error"] and "Guessed" not in st["last_error"]
        print("last_error during the outage:", st["last_error"])

        rtmp_server.start()
        back = time.monotonic()
        on_air_after = first_packet(rtmp_server.url("avatar"), limit_s=30) - back
        st = daemon.wait_for(lambda s: daemon.outcomes(s).get("cut") == "aired", 60, "aired")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    print(f"on air {on_air_after:.2f} s after the RTMP server returned")
    # Back because the probe saw the server return, not because a 8-16 s backoff ran out
    # (the figure is printed above and quoted in the notes; tests assert no timings).
    assert "accepts connections again; reconnecting now" in daemon.log()
    assert [e["id"] for e in st["recent"]] == ["cut"]  # aired once, after the return
    assert "cut by the encoder outage" in daemon.log()


def test_two_outputs_stand_alone(tmp_path: Path, queues: QueueNames) -> None:
    a, b = NginxRtmp(tmp_path / "a"), NginxRtmp(tmp_path / "b")
    a.start()
    b.start()
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([a.url("avatar"), b.url("avatar")]),
        "AVATARCAST_OUTPUT__RESTART_BACKOFF_MAX_S": "30",
    })
    try:
        daemon.wait_for(lambda s: s["encoder_alive"] and s["frames_sent"] > 60, 30, "on air")
        first_packet(a.url("avatar"), limit_s=10)
        first_packet(b.url("avatar"), limit_s=10)
        watch_a = Receiver(a.url("avatar"), tmp_path / "a.flv")
        time.sleep(2)
        b.stop()
        daemon.wait_for_backoff(8, 60)  # b's retries back off past 8 s
        st = daemon.status()
        assert st is not None and st["encoder_restarts"] == 0 and st["state"] == "idle"
        b.start()
        back = time.monotonic()
        b_after = first_packet(b.url("avatar"), limit_s=30) - back
        time.sleep(2)
        watch_a.proc.terminate()
        watch_a.wait(10)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
        a.stop()
        b.stop()
    pts = packets(tmp_path / "a.flv", "v")[:, 0]
    print(f"output b back {b_after:.2f} s after its server returned; a: {pts.size} frames, "
          f"largest gap {float((pts[1:] - pts[:-1]).max()):.3f} s")
    # a never noticed: a continuous stream through b's outage and return.
    assert float(pts.max() - pts.min()) > 12 and float((pts[1:] - pts[:-1]).max()) < 0.2
    # b rejoined on its own (first_packet above got its stream), woken by the probe, at the
    # next keyframe, without restarting the encoder (checked before the return).
    assert "accepts connections again; reconnecting now" in daemon.log()


def test_recording_goes_on_while_the_rtmp_output_is_down(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([rtmp_server.url("avatar")]),
        "AVATARCAST_OUTPUT__RECORD_PATH": str(tmp_path / "rec" / "program.mkv"),
    })
    try:
        daemon.wait_for(lambda s: all(o["live"] for o in s["outputs"]) and s["outputs"], 30,
                        "both outputs live")
        down = time.monotonic()
        rtmp_server.stop()
        st = daemon.wait_for(lambda s: not s["outputs"][0]["live"], 15, "rtmp output down")
        assert [o["live"] for o in st["outputs"]] == [False, True]
        time.sleep(4)
        rtmp_server.start()
        daemon.wait_for(lambda s: all(o["live"] for o in s["outputs"]), 15, "rtmp back")
        outage = time.monotonic() - down
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    (recording,) = sorted((tmp_path / "rec").iterdir())  # one file: never restarted
    v = packets(recording, "v")[:, 0]
    a = packets(recording, "a")[:, 0]
    # The recording spans the whole outage, without a gap.
    assert float(v.max() - v.min()) > outage and float((v[1:] - v[:-1]).max()) < 0.1
    assert abs(float(v.max() - a.max())) < 0.2  # sound and picture end together
