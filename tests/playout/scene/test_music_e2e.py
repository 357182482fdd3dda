"""The music bed in the sound a real RTMP client received: heard between texts at the scene's
level and the speech at the speech's (measured by FFmpeg's own EBU R128 meter), at least
12 dB lower under speech (the bed is a 7 kHz tone, read off the received audio in a 2 Hz band
where speech has next to nothing), back after the text, and gone after a control message
stops it; no frame dropped."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from harness.daemon import QueueNames, Receiver, decode_audio, publish
from harness.events import EventTap
from harness.loudness import ffmpeg_r128
from harness.services import NginxRtmp

from .on_air import scene_daemon

W, H, FPS, RATE = 320, 240, 30, 48_000
TONE = 7000.0
SCENE = """
[music]
folder = "music"
level_lufs = -30
duck_db = 18
"""
TEXT = ("Good evening, and welcome to the show. Tonight we look at the weather, "
        "the markets and the news from the city.")


def tone_db(x: np.ndarray) -> float:
    """The level of the bed's tone in a stretch of the received audio (dB, relative)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1 / RATE)
    band = spectrum[(freqs > TONE - 4) & (freqs < TONE + 4)]
    return float(20 * np.log10(band.max() + 1e-12))


def at(frame: int) -> int:
    return frame * (RATE // FPS)


@pytest.mark.services
def test_the_bed_is_heard_between_texts_ducks_under_speech_and_stops_on_control(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp,
) -> None:
    (tmp_path / "music").mkdir()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency={TONE:g}:sample_rate={RATE}:duration=60",
                    "-ac", "1", str(tmp_path / "music" / "tone.flac")], check=True)
    (tmp_path / "scene.toml").write_text(SCENE)
    url = rtmp_server.url("music")
    receiver = Receiver(url, tmp_path / "received.flv", idle_timeout_s=60)
    daemon = scene_daemon(tmp_path, queues, url, animator="still", width=W, height=H)
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")
        daemon.wait_for(lambda s: (s["music"] or {}).get("track") == "tone.flac", 20, "music")
        daemon.wait_for(lambda s: s["frames_sent"] >= 6 * FPS, 20, "music alone first")
        with EventTap(queues.events) as tap:
            publish(queues.speak, {"type": "speak", "id": "t0", "text": TEXT})
            tap.wait_for(lambda ev: any(e["event"] == "finished" for e in ev), 60, "aired")
            time.sleep(3.0)
            publish(queues.control, {"type": "control", "command": "scene",
                                     "layer": "music", "visible": False})
            tap.wait_for(lambda ev: any(e["event"] == "scene" for e in ev), 20, "stopped")
            time.sleep(3.0)
            events = {e["event"]: e["stream_frame"] for e in tap.events}
        st = daemon.status()
        assert st is not None
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()
        receiver.finish()
    assert st["frames_dropped"] == 0, st
    assert st["music"]["playing"] is False and st["music"]["problem"] is None
    assert st["loudness"]["integrated_lufs"] is not None
    audio = decode_audio(receiver.out)
    on, off = events["on_air"], events["finished"]
    idle = audio[at(FPS):at(5 * FPS)]
    speech = audio[at(on + FPS // 2):at(off - FPS // 2)]
    after = audio[at(off + 2 * FPS):at(events["scene"])]
    stopped = audio[at(events["scene"] + FPS):at(events["scene"] + 3 * FPS)]
    # Heard between texts at the scene's level, by an outside meter; the speech over it at
    # the speech's (speech.loudness_lufs, -18 by default).
    assert ffmpeg_r128(idle)[0] == pytest.approx(-30, abs=1.0)
    assert ffmpeg_r128(speech)[0] == pytest.approx(-18, abs=1.0)
    # Under speech: at least 12 dB lower (18 asked), in every half second of it.
    quiet = [tone_db(speech[i:i + RATE // 2]) for i in range(0, speech.size - RATE // 2,
                                                            RATE // 2)]
    loud = tone_db(idle[:RATE // 2])
    assert len(quiet) >= 4 and max(quiet) < loud - 12, (loud, quiet)
    assert tone_db(after[-RATE // 2:]) == pytest.approx(loud, abs=1.5)  # back after it
    assert tone_db(stopped[-RATE // 2:]) < loud - 40  # stopped by the control message
