"""Audio: samples per frame, exact per-frame slices, resampling."""

from __future__ import annotations

import numpy as np
import pytest

from avatarcast.media.audio import FrameSlicer, resample, samples_per_frame


def test_samples_per_frame() -> None:
    assert samples_per_frame(48000, 30) == 1600
    assert samples_per_frame(48000, 25) == 1920
    with pytest.raises(ValueError):
        samples_per_frame(44100, 32)


def test_slicer_gives_exact_frames_and_keeps_every_sample() -> None:
    slicer = FrameSlicer(1600)
    rng = np.random.default_rng(1)
    chunks = [rng.integers(-3000, 3000, size=s, dtype=np.int16) for s in (1000, 2500, 1601, 7)]
    frames = [f for c in chunks for f in slicer.push(c)] + slicer.flush()
    assert all(f.size == 1600 for f in frames)
    total = sum(c.size for c in chunks)
    assert len(frames) == -(-total // 1600)
    joined = np.concatenate(frames)
    assert np.array_equal(joined[:total], np.concatenate(chunks))
    assert not joined[total:].any()
    assert slicer.flush() == []


def test_resample_keeps_duration_and_pitch() -> None:
    t = np.arange(22050) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = resample(tone, 22050, 48000)
    assert out.dtype == np.int16 and abs(out.size - 48000) <= 2
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    assert abs(np.argmax(spectrum) * 48000 / out.size - 440) < 2
