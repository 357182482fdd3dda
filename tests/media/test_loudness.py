"""media/loudness.py against FFmpeg's own EBU R128 meter (the ebur128 filter), on signals
whose loudness the standard fixes (a 1 kHz sine at -6 dBFS is -9.0 LUFS in mono), low and
high tones and a bass square wave (the K-weighting's two ends: a filter applied per block in the
frequency domain read bass 0.3-0.55 LU low), noise, and a signal half of which the gates
drop."""

from __future__ import annotations

import numpy as np
import pytest

from avatarcast.media.loudness import LoudnessMeter, integrated_lufs
from harness.loudness import ffmpeg_r128

RATE = 48_000
T = np.arange(RATE * 8) / RATE
RNG = np.random.default_rng(7)
SIGNALS = {
    "sine_1k": 0.5 * np.sin(2 * np.pi * 1000 * T),
    "sine_60": 0.5 * np.sin(2 * np.pi * 60 * T),
    "sine_40": 0.5 * np.sin(2 * np.pi * 40 * T),
    "square_45": 0.3 * np.sign(np.sin(2 * np.pi * 45 * T)),  # bass-heavy music's kind
    "sine_9k": 0.3 * np.sin(2 * np.pi * 9000 * T),
    "noise": 0.1 * RNG.standard_normal(T.size),
    "gated": np.where((T % 2) < 1, 0.3, 0.001) * RNG.standard_normal(T.size),
}


@pytest.mark.parametrize("name", list(SIGNALS))
def test_the_meter_agrees_with_ffmpeg(name: str) -> None:
    x = SIGNALS[name]
    meter = LoudnessMeter()
    for i in range(0, x.size, 1600):  # one tick's audio at a time, as on air
        meter.push(x[i:i + 1600].astype(np.float32))
    lufs, peak = ffmpeg_r128(x)
    assert meter.integrated == pytest.approx(lufs, abs=0.1)
    assert meter.true_peak_db == pytest.approx(peak, abs=0.6)
    assert integrated_lufs(x.astype(np.float32)) == pytest.approx(meter.integrated, abs=0.01)


def test_a_full_scale_sine_at_1k_is_minus_3_lufs_and_silence_is_not_measured() -> None:
    assert integrated_lufs((np.sin(2 * np.pi * 1000 * T)).astype(np.float32)) == \
        pytest.approx(-3.01, abs=0.05)
    meter = LoudnessMeter()
    meter.push(np.zeros(RATE * 3, np.float32))
    assert meter.integrated == -np.inf and meter.short_term == -np.inf
