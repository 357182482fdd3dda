"""Outputs besides RTMP, each read back by a real receiver: SRT (an FFmpeg listener recording
what arrives), HLS to a folder (its playlist and segments read by ffprobe and FFmpeg), a local
recording; one message aired is heard in every one of them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avatarcast.onair.ffmpeg_args import targets
from avatarcast.settings import OutputSettings
from harness.daemon import DaemonProc, QueueNames, decode_audio, publish
from harness.services import free_port, stop_process

pytestmark = pytest.mark.services
TEXT = "Every output hears this sentence, from the first word to the last."


def _streams(path: Path | str) -> list[str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                          "-of", "json", str(path)], capture_output=True, text=True,
                         timeout=30)
    return sorted(s["codec_name"] for s in json.loads(out.stdout)["streams"])


def _loudest_second(path: Path | str) -> float:
    audio = decode_audio(Path(path))  # float, 48 kHz
    win = 48_000
    return max(float(np.sqrt(np.mean(audio[i : i + win] ** 2)))
               for i in range(0, max(1, len(audio) - win), win // 2))


def test_srt_hls_and_a_recording_each_carry_the_stream(tmp_path: Path,
                                                       queues: QueueNames) -> None:
    port = free_port()
    received = tmp_path / "srt.ts"
    listener = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-y", "-i", f"srt://127.0.0.1:{port}?mode=listener",
         "-c", "copy", "-f", "mpegts", str(received)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    hls = tmp_path / "hls"
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__SRT_URLS": json.dumps([f"srt://127.0.0.1:{port}"]),
        "AVATARCAST_OUTPUT__HLS_DIR": str(hls),
        "AVATARCAST_OUTPUT__RECORD_PATH": str(tmp_path / "program.mkv"),
    })
    try:
        st = daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60,
                             "ready")
        assert sorted(o["name"] for o in st["outputs"]) == ["hls", "record",
                                                            f"srt1 (127.0.0.1:{port})"]
        daemon.wait_for(lambda s: all(o["live"] for o in s["outputs"]), 30, "all live")
        publish(queues.speak, {"type": "speak", "id": "all-1", "text": TEXT})
        daemon.wait_for(lambda s: daemon.outcomes(s) == {"all-1": "aired"}, 60, "aired")
        daemon.wait_for(lambda s: s["frames_sent"] > 0, 5, "")
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()
        try:
            listener.wait(15)
        finally:
            stop_process(listener)

    playlist = (hls / "index.m3u8").read_text()
    segments = [ln for ln in playlist.splitlines() if ln.endswith(".ts")]
    assert playlist.startswith("#EXTM3U") and "#EXT-X-TARGETDURATION" in playlist
    assert 1 <= len(segments) <= 6 and all((hls / s).is_file() for s in segments)
    assert len(list(hls.glob("segment-*.ts"))) <= 7  # old segments are deleted
    for where in (received, hls / "index.m3u8", tmp_path / "program.mkv"):
        assert _streams(where) == ["aac", "h264"], where
    # The message is heard in the SRT stream and in the recording (the HLS playlist keeps
    # only the last 12 s; its segments are read above).
    assert _loudest_second(received) > 0.05
    assert _loudest_second(tmp_path / "program.mkv") > 0.05


def test_hls_alone_is_written_without_a_relay(tmp_path: Path, queues: QueueNames) -> None:
    hls = tmp_path / "hls"
    daemon = DaemonProc(tmp_path / "d", queues, {"AVATARCAST_OUTPUT__HLS_DIR": str(hls)})
    try:
        st = daemon.wait_for(lambda s: s["frames_sent"] > 150, 60, "five seconds on air")
        assert st["outputs"] == []  # one output: the encoder writes it directly
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert _streams(hls / "index.m3u8") == ["aac", "h264"]
    duration = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(hls / "index.m3u8")], capture_output=True, text=True, timeout=30).stdout
    assert float(duration) >= 4


def test_outputs_are_named_without_their_secrets() -> None:
    out = OutputSettings.model_validate({
        "rtmp_urls": ["rtmp://a.example/live/KEY1"], "srt_urls": ["srt://b.example:9000"],
        "hls_dir": "/tmp/x", "record_path": "/tmp/r.mkv"})
    found = targets(out)
    assert [t.name for t in found] == ["rtmp1 (a.example:1935)", "srt1 (b.example:9000)",
                                       "hls", "record"]
    assert [t.fmt for t in found] == ["flv", "mpegts", "hls", "matroska"]
    assert not any("KEY1" in t.name for t in found)
    with pytest.raises(ValueError, match="srt://"):
        OutputSettings.model_validate({"srt_urls": ["udp://x:1"]})
