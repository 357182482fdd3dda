"""The music bed (playout/scene/music.py) and its mix under the programme (mix.py): tracks of
very different levels (30 dB apart) come out at the bed's loudness, one after the other
without a gap; a file that cannot be decoded is left out with a line; a folder with nothing
playable leaves the bed silent and says why. Under speech the bed goes down by duck_db, comes
back after speech, and is muted under an interrupt."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from avatarcast.media.loudness import LoudnessMeter
from avatarcast.onair.segment import Segment
from avatarcast.onair.tick import TickOutput
from avatarcast.playout.scene.mix import MusicMix
from avatarcast.playout.scene.music import RATE, MusicBed
from avatarcast.playout.scene.spec import Music

SPF = RATE // 30


def track(path: Path, source: str, seconds: float, gain_db: float = 0.0) -> Path:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"{source}:duration={seconds}", "-af", f"volume={gain_db}dB",
                    "-ar", str(RATE), "-ac", "1", str(path)], check=True)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "music"
    d.mkdir()
    track(d / "loud.wav", "anoisesrc=color=pink:amplitude=0.6:sample_rate=48000", 5)
    track(d / "quiet.ogg", "sine=frequency=330:sample_rate=48000", 5, gain_db=-24)
    (d / "broken.mp3").write_bytes(b"\x00not an mp3 at all" * 100)
    (d / "notes.txt").write_text("not music")
    return d


def read(bed: MusicBed, seconds: float, pace: float = 4.0) -> np.ndarray:
    """What the pacer would take, tick by tick, `pace` times faster than real time."""
    out = []
    for _ in range(round(seconds * 30)):
        out.append(bed.read(SPF))
        time.sleep(1 / 30 / pace)
    return np.concatenate(out)


def test_tracks_come_out_at_the_bed_level_one_after_another(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bed = MusicBed(Music(folder=folder, level_lufs=-30, crossfade_s=1.0), seed=3)
    try:
        with caplog.at_level(logging.INFO, logger="avatarcast.playout.scene.music"):
            time.sleep(1.0)  # the first track measured and begun
            out = read(bed, 26)
    finally:
        bed.close()
    # Every 400 ms of it at the bed's level: a track 30 dB quieter than the other included,
    # and through the crossfades (equal power).
    momentary = []
    meter = LoudnessMeter()
    for i in range(0, out.size, RATE // 10):
        meter.push(out[i:i + RATE // 10])
        momentary.append(meter.momentary)
    assert np.percentile(momentary[4:], 5) > -32.5, momentary
    assert np.percentile(momentary[4:], 95) < -27.5, momentary
    assert meter.integrated == pytest.approx(-30, abs=1.0)
    assert bed.underruns == 0 and bed.problem is None
    played = [r.getMessage() for r in caplog.records if r.getMessage().startswith("music: ")]
    assert any("loud.wav" in m for m in played) and any("quiet.ogg" in m for m in played)
    assert [m for m in played if "broken.mp3" in m] == [
        next(m for m in played if "broken.mp3" in m)]  # left out, once, with the reason
    assert "cannot be decoded" in next(m for m in played if "broken.mp3" in m)
    assert not any("notes.txt" in m for m in played)


def test_a_folder_with_nothing_playable_leaves_the_bed_silent_and_says_why(
    tmp_path: Path
) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF....garbage")
    bed = MusicBed(Music(folder=tmp_path), seed=1)
    try:
        time.sleep(1.5)
        out = read(bed, 1)
        assert bed.problem == f"music: no track in {tmp_path} could be played"
    finally:
        bed.close()
    assert not out.any() and bed.underruns == 0


class Steady:
    """A bed that plays a constant, to read the mix's gain off the mixed samples."""

    def __init__(self) -> None:
        self.now_playing, self.problem, self.underruns = "steady", None, 0

    def read(self, n: int) -> np.ndarray:
        return np.full(n, 0.1, np.float32)


def gains(mix: MusicMix, ticks: list[Segment | None]) -> list[float]:
    """The bed's gain at the end of each tick, in dB, read off the mixed audio."""
    out = []
    for n, seg in enumerate(ticks):
        tick = TickOutput(np.zeros((4, 4), np.uint8), np.zeros(SPF, np.int16), segment=seg,
                          quiet_after=5)
        mix(n, tick)
        level = abs(int(tick.audio[-1])) / 32767 / 0.1
        out.append(20 * np.log10(level) if level > 0 else -np.inf)
        if level > 0:  # (the bed is heard: no tick is certain to be silent)
            assert tick.quiet_after == 0
    return out


def test_the_bed_ducks_under_speech_comes_back_after_and_mutes_for_an_interrupt() -> None:
    music = Music(folder=Path("."), duck_db=18, attack_ms=60, release_ms=700, hold_ms=400)
    mix = MusicMix(Steady(), music, fps=30, sample_rate=RATE)  # type: ignore[arg-type]
    speech = Segment("s", 0)
    urgent = Segment("u", 0)
    urgent.urgent = True
    g = gains(mix, [None] * 10 + [speech] * 60 + [None] * 90 + [urgent] * 30 + [None] * 90)
    assert g[9] == pytest.approx(0, abs=0.1)  # before: the bed's own level
    assert g[10 + 6] < -15  # 200 ms into speech: down by most of duck_db already
    assert all(-18.2 < x < -17.5 for x in g[10 + 15:70])  # held down while it speaks
    assert all(x < -17.5 for x in g[70:70 + 12])  # and for the hold after
    assert g[159] == pytest.approx(0, abs=0.3)  # back after the release
    assert g[160 + 5] == -np.inf  # an interrupt on air: muted within 5 ticks
    assert g[-1] == pytest.approx(0, abs=0.3)
    mix.play(False)
    assert gains(mix, [None] * 90)[-1] == -np.inf  # stopped: faded out, and left alone


def test_a_bed_left_unread_keeps_its_track(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped (or muted under an interrupt), the bed is not read: its feeder waits with the
    decoder paused. That is not a hung decoder: the track plays on when the bed is read again."""
    monkeypatch.setattr("avatarcast.playout.scene.music.STALL_S", 1.0)
    track(tmp_path / "long.wav", "anoisesrc=color=pink:amplitude=0.3:sample_rate=48000", 40)
    bed = MusicBed(Music(folder=tmp_path, crossfade_s=0), seed=1)
    try:
        with caplog.at_level(logging.INFO, logger="avatarcast.playout.scene.music"):
            time.sleep(4.0)  # nothing read: the feeder is 10 s ahead and waits
            out = read(bed, 12)
    finally:
        bed.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert bed.problem is None and bed.underruns == 0
    assert np.abs(out[-RATE:]).max() > 0.01
