"""One worker, several channels, against real RabbitMQ and nginx-rtmp: each channel airs its
own queue on its own stream; a channel that cannot start, or whose encoder is killed, leaves
the others on air without a dropped frame."""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

import pytest

from harness.daemon import (
    DaemonProc,
    QueueNames,
    Receiver,
    decode_audio,
    delete_queues,
    publish,
    rms_windows,
    write_channels,
)
from harness.events import EventTap
from harness.services import NginxRtmp

pytestmark = pytest.mark.services
RATE = 48000


def _ffmpeg_publishing_to(url: str) -> int:
    """The pid of the FFmpeg whose command line ends with this output URL."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        # (Its output is its last argument; a client reading the stream has it after -i.)
        if args[0].endswith(b"ffmpeg") and args[-1] == url.encode():
            return int(pid)
    raise AssertionError(f"no FFmpeg publishes to {url}")


def _speech_s(path: Path) -> float:
    """Seconds of speech in a recording: its loud 100 ms windows."""
    return 0.1 * int((rms_windows(decode_audio(path), RATE, 0.1) > 0.02).sum())


def test_channels_air_their_own_queues_and_fail_alone(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    urls = {cid: rtmp_server.url(f"ch-{cid}") for cid in "abc"}
    # Channel c: an avatar that was never prepared.
    write_channels(tmp_path / "channels.toml", urls, {"c": 'avatar.id = "nobody"\n'})
    recordings = {cid: tmp_path / f"{cid}.flv" for cid in "ab"}
    receivers = {cid: Receiver(urls[cid], recordings[cid]) for cid in "ab"}
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_CHANNELS_FILE": str(tmp_path / "channels.toml"),
        "AVATARCAST_OUTPUT__RTMP_URLS": "[]",
        "AVATARCAST_FACE__ANIMATOR": "still",
        # c keeps failing: restarted here, not handed over (no other worker to take it).
        "AVATARCAST_FLEET__GIVE_UP_AFTER": "100",
    })
    qa, qb = queues.channel("a"), queues.channel("b")

    def up(cid: str) -> bool:
        st = (daemon.status() or {}).get("channels", {}).get(cid, {})
        return bool(st.get("speech_ready") and st.get("broker_connected"))

    try:
        with EventTap(queues.events) as tap:
            st = daemon.wait_for(lambda s: up("a") and up("b") and bool(
                s["channels"]["c"].get("last_error")), 60, "a and b on air, c failed")
            assert st["channels"]["c"]["state"] == "off air"
            assert "avatar 'nobody'" in st["channels"]["c"]["last_error"]
            with pytest.raises(urllib.error.HTTPError) as not_ok:  # one channel is off air
                urllib.request.urlopen(f"http://127.0.0.1:{daemon.health_port}/healthz")
            assert not_ok.value.code == 503

            publish(qa.speak, {"type": "speak", "id": "for-a", "text": "This is channel A."})
            st = daemon.wait_for(lambda s: any(
                r["id"] == "for-a" for r in s["channels"]["a"]["recent"]), 60, "for-a settled")
            assert st["channels"]["a"]["recent"][-1]["outcome"] == "aired"
            assert not st["channels"]["b"]["recent"]
            tap.wait_for(lambda evs: any(e["event"] == "finished" for e in evs), 10, "events")
            assert {e.get("channel") for e in tap.of("for-a")} == {"a"}

            # Channel a's encoder dies; b airs its message meanwhile without a dropped frame.
            os.kill(_ffmpeg_publishing_to(urls["a"]), signal.SIGKILL)
            publish(qb.speak, {"type": "speak", "id": "for-b", "text": "And this is B."})
            st = daemon.wait_for(lambda s: any(
                r["id"] == "for-b" for r in s["channels"]["b"]["recent"])
                and s["channels"]["a"]["encoder_restarts"] >= 1
                and s["channels"]["a"]["encoder_alive"], 60, "for-b aired, a back")
            a, b = st["channels"]["a"], st["channels"]["b"]
            assert b["recent"][-1]["outcome"] == "aired"
            # b's encoder ran on, and b sent its ticks while a lost all of its own from the
            # kill to its new FFmpeg (the 0.5 s backoff and its start: 15 frames or more). Not
            # none dropped: b's FFmpeg may fall its 8 frames behind on a busy machine while
            # a's starts; but b held up by a's outage would have lost about as many as a.
            assert b["encoder_restarts"] == 0, daemon.log()[-4000:]
            assert b["frames_dropped"] * 2 <= a["frames_dropped"], (b, daemon.log()[-4000:])
            assert [r["id"] for r in st["channels"]["a"]["recent"]] == ["for-a"]

            with urllib.request.urlopen(
                    f"http://127.0.0.1:{daemon.health_port}/metrics") as r:
                metrics = r.read().decode()
            for cid in "ab":
                assert f'avatarcast_frames_sent_total{{channel="{cid}"}}' in metrics
            assert 'channel="c"' not in metrics
            assert metrics.count("# TYPE process_resident_memory_bytes") == 1
        assert daemon.stop() == 0, daemon.log()[-3000:]
    finally:
        daemon.kill()
        for rec in receivers.values():
            rec.finish()
        for cid in "abc":
            delete_queues(queues.channel(cid))
    log = daemon.log()
    assert "[c] " in log and "restarting it in" in log  # c's lines name it; it is retried
    assert "[a] " in log and "[b] " in log
    for url in urls.values():
        assert url not in log  # stream keys stay out of the log
    # Each stream carries its own channel's speech and only that: about as much speech as
    # its message aired (by its frames), not the other's as well. (The two texts are about
    # as long; b's may start within a second of a's end, so no pause tells them apart.)
    # Loud windows miss the quiet between words, and one across the speech's start or end
    # may count: between half of it and it + 0.2 s.
    for cid in "ab":
        (entry,) = (r for r in st["channels"][cid]["recent"] if r["id"] == f"for-{cid}")
        aired_s = entry["frames"] / 30  # at the default 30 fps
        assert aired_s / 2 <= _speech_s(recordings[cid]) <= aired_s + 0.2, (cid, aired_s)
    # The worker's status holds every configured channel under its own id, the running ones
    # each reporting itself (not another channel's figures), and says it owns all three.
    assert st["owned"] == ["a", "b", "c"] and set(st["channels"]) == {"a", "b", "c"}
    assert [st["channels"][cid]["channel"] for cid in "ab"] == ["a", "b"]
