"""End to end: the daemon streams to a real nginx-rtmp, a real FFmpeg records what the server
relays, and the recording is checked frame by frame and sample by sample."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest

from harness.arrivals import STALL_S, Arrivals, drift, largest_gap, past_start
from harness.daemon import (
    DaemonProc,
    QueueNames,
    Receiver,
    decode_audio,
    drain,
    packets,
    publish,
    queue_depth,
    rms_windows,
)
from harness.services import NginxRtmp

pytestmark = pytest.mark.services
FPS = 30
RATE = 48000


def test_two_texts_and_a_malformed_message(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    key = f"k{uuid.uuid4().hex}"
    url = rtmp_server.url(key)
    # The receiver connects first and waits, so it records the stream from its first frame.
    receiver = Receiver(url, tmp_path / "received.flv")
    watch = Arrivals(url, idle_timeout_s=10)  # when each frame arrived
    daemon = DaemonProc(tmp_path, queues, {"AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url])})
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        publish(queues.speak, {"type": "speak", "id": "first", "text": "Hello, I am live."})
        publish(queues.speak, b"{not json", message_id="broken")
        publish(queues.speak, {"type": "speak", "text": "This is the second message."},
                message_id="second")
        st = daemon.wait_for(
            lambda s: s["state"] == "idle"
            and daemon.outcomes(s) == {"first": "aired", "second": "aired"},
            60, "both texts aired",
        )
        # A short stretch of idle after the speech, then a clean stop.
        daemon.wait_for(lambda s: s["frames_sent"] >= st["frames_sent"] + FPS, 10, "idle tail")
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()
        receiver.wait()
        arrivals = watch.stop()
    log = daemon.log()
    assert url not in log and key not in log, "stream key leaked into the log"

    # Acked: nothing left in the speak queue (unacked messages would be back after exit).
    assert queue_depth(queues.speak) == 0
    dead = drain(queues.dead)
    assert len(dead) == 1
    assert dead[0].body == b"{not json"
    assert "not JSON" in str(dead[0].headers["x-avatarcast-reason"])

    # Frames: every frame the daemon sent arrived, evenly spaced, no gap.
    video = packets(receiver.out, "v")
    sent = int(re.findall(r"frames sent (\d+), dropped (\d+)", log)[-1][0])
    dropped = int(re.findall(r"frames sent (\d+), dropped (\d+)", log)[-1][1])
    assert dropped == 0
    pts = video[:, 0]
    duration = pts[-1] - pts[0] + 1 / FPS
    assert abs(len(pts) - FPS * duration) <= 1
    assert abs(len(pts) - sent) <= 1
    gaps = np.diff(pts)
    assert gaps.max() <= 1 / FPS + 0.0015, f"largest gap {gaps.max():.4f} s"
    assert gaps.min() >= 1 / FPS - 0.0015, f"smallest gap {gaps.min():.4f} s"
    # ... and in time: the timestamps count frames (a daemon that froze and then went on
    # would leave them even), so the arrivals at a second client show that nothing stalled.
    # STALL_S: a stall of a second or more, not the jitter of tens of ms measured here.
    paced = past_start(arrivals)
    assert float(paced[-1, 1] - paced[0, 1]) > 2  # the speech and the idle tail
    assert largest_gap(paced) < STALL_S, f"a stall of {largest_gap(paced):.3f} s"
    assert drift(paced) < STALL_S, f"the stream's clock moved {drift(paced):.3f} s"

    # Audio runs exactly as long as video. Both are measured from the stream's common origin:
    # FFmpeg starts video one AAC priming frame (1024 samples) after the audio packets, so the
    # ends are what compare (the last AAC packet also carries padding up to 1024 samples).
    audio = packets(receiver.out, "a")
    a_end, v_end = audio[-1, 0] + audio[-1, 1], pts[-1] + 1 / FPS
    assert abs(a_end - v_end) <= 1 / FPS, (a_end, v_end)
    print(f"\nreceived {len(pts)} frames (sent {sent}), {duration:.3f} s of video, "
          f"A/V end difference {1000 * (a_end - v_end):+.1f} ms, largest gap "
          f"{1000 * np.diff(pts).max():.1f} ms; arrivals: largest wait "
          f"{1000 * largest_gap(paced):.0f} ms, drift {1000 * drift(paced):.0f} ms")

    # Speech where each text aired, silence everywhere else.
    samples = decode_audio(receiver.out)
    t0 = pts[0]  # stream frame k is shown at t0 + k / FPS; audio starts with the stream
    win = 0.05
    rms = rms_windows(samples, RATE, win)
    times = audio[0, 0] + np.arange(rms.size) * win + win / 2
    speech = np.zeros(rms.size, dtype=bool)
    aired = [e for e in st["recent"] if e["outcome"] == "aired"]
    assert len(aired) == 2
    for e in aired:
        assert e["stream_run"] == 1
        start = t0 + e["stream_first"] / FPS
        end = t0 + (e["stream_last"] + 1) / FPS
        inside = (times > start + 0.1) & (times < end - 0.1)
        assert inside.sum() >= 10
        voiced = (rms[inside] > 0.01).mean()
        assert voiced > 0.4, f"{e['id']}: only {voiced:.0%} of its window is voiced"
        speech |= (times > start - 0.15) & (times < end + 0.15)
    outside = ~speech & (times < times[-1] - 0.2)
    assert outside.sum() > 20
    assert rms[outside].max() < 0.002, f"noise outside speech: {rms[outside].max():.4f}"
