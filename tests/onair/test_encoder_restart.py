"""FFmpeg dies mid-stream: the clock keeps running, the encoder comes back, nothing piles up."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from harness.daemon import DaemonProc, QueueNames, packets

pytestmark = pytest.mark.services


def test_ffmpeg_killed_is_restarted_and_the_stream_goes_on(tmp_path, queues: QueueNames) -> None:  # type: ignore[no-untyped-def]
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_OUTPUT__RECORD_PATH": str(tmp_path / "rec" / "program.mkv"),
        "AVATARCAST_OUTPUT__RESTART_BACKOFF_MIN_S": "0.2",
    })
    try:
        st = daemon.wait_for(lambda s: s["frames_sent"] > 30, 30, "on air")
        child = subprocess.run(["pgrep", "-P", str(daemon.proc.pid), "ffmpeg"],
                               capture_output=True, text=True, check=True).stdout.split()
        os.kill(int(child[0]), signal.SIGKILL)
        st = daemon.wait_for(
            lambda s: s["encoder_restarts"] == 1 and s["encoder_alive"], 15, "encoder restart"
        )
        before = st["frames_sent"]
        st = daemon.wait_for(
            lambda s: s["frames_sent"] >= before + 30 and s["state"] == "idle", 15, "on air again"
        )
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()
    files = sorted((tmp_path / "rec").iterdir())
    assert [f.name for f in files] == ["program.mkv", "program~2.mkv"]
    # The second run starts from its own first frame and streams on; frames that fell in the
    # outage were dropped, not queued up and burst out afterwards.
    second = packets(files[1], "v")
    assert len(second) >= 30
    assert second[0, 0] < 0.1
    log = daemon.log()
    assert "state IDLE -> ERROR" in log and "state ERROR -> IDLE" in log


def test_an_encoder_slow_to_start_drops_nothing(tmp_path, queues: QueueNames) -> None:  # type: ignore[no-untyped-def]
    # FFmpeg that takes 0.6 s before it reads its first frame (a loaded machine: voices
    # loading, other channels' encoders starting): the stream's first frames wait for it.
    slow = tmp_path / "bin" / "ffmpeg"
    slow.parent.mkdir()
    slow.write_text(f'#!/bin/sh\nsleep 0.6\nexec {shutil.which("ffmpeg")} "$@"\n')
    slow.chmod(0o755)
    (slow.parent / "ffprobe").symlink_to(str(shutil.which("ffprobe")))
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_OUTPUT__RECORD_PATH": str(tmp_path / "rec" / "program.mkv"),
        "AVATARCAST_OUTPUT__FFMPEG_PATH": str(slow),
    })
    try:
        st = daemon.wait_for(lambda s: s["frames_sent"] > 60, 30, "on air")
        assert st["frames_dropped"] == 0
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()
    assert len(packets(tmp_path / "rec" / "program.mkv", "v")) > 60
