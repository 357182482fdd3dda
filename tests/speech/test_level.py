"""speech/level.py: voices of different levels come out at the speech loudness (EBU R128, by
FFmpeg's own meter), with their peaks under the ceiling, and the limiter touches only the
blocks around a peak."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from avatarcast.media.loudness import integrated_lufs
from avatarcast.settings import SpeechSettings
from avatarcast.speech.chain import Speech, make_providers
from avatarcast.speech.level import PEAK_CEILING, SpeechLevel, limit
from harness.loudness import ffmpeg_r128

TEXT = ("Good evening, and welcome to the show. Tonight we look at the weather, the markets "
        "and the news from the city. It has been a long day, and there is a lot to say.")


async def _say(tmp_path: Path, provider: str, **level: object) -> np.ndarray:
    s = SpeechSettings(providers=[provider], cache_dir=tmp_path, **level)  # type: ignore[arg-type]
    speech = Speech(make_providers(s, "ffmpeg", tmp_path), s, 48_000)
    await speech.start()
    try:
        return np.concatenate([c.pcm async for c in speech.synthesize(TEXT, None)])
    finally:
        await speech.aclose()


@pytest.mark.parametrize("provider", ["piper", "espeak"])
def test_each_voice_comes_out_at_the_speech_loudness(tmp_path: Path, provider: str) -> None:
    raw = asyncio.run(_say(tmp_path, provider, normalize=False))
    levelled = asyncio.run(_say(tmp_path, provider, loudness_lufs=-16.0))
    before, _ = ffmpeg_r128(raw.astype(np.float32) / 32768)
    after, peak = ffmpeg_r128(levelled.astype(np.float32) / 32768)
    assert abs(before - -16) > 2  # (the voice on its own is elsewhere)
    assert after == pytest.approx(-16, abs=1.0), (provider, before, after)
    assert peak <= -0.5, peak
    assert levelled.size == raw.size


def test_the_limiter_lowers_only_the_blocks_around_a_peak() -> None:
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(48_000)).astype(np.float32)
    x[24_000] = 1.6  # one peak
    y = limit(x, PEAK_CEILING)
    assert np.abs(y).max() <= PEAK_CEILING + 1e-6
    changed = np.flatnonzero(np.abs(y - x) > 1e-6)
    assert changed.min() > 24_000 - 400 and changed.max() < 24_000 + 400
    assert limit(x[:20_000], PEAK_CEILING) is x[:20_000] or np.array_equal(
        limit(x[:20_000], PEAK_CEILING), x[:20_000])


def test_a_voice_is_measured_as_it_speaks_and_its_gain_is_bounded() -> None:
    level = SpeechLevel(-18.0, 48_000)
    quiet = (0.002 * np.sin(np.arange(48_000) / 7)).astype(np.float32)
    out = level.apply("v", np.round(quiet * 32767).astype(np.int16))
    assert level.gain_db("v") == 15.0  # far too quiet: brought up by the most allowed
    assert integrated_lufs(out.astype(np.float32) / 32768) == pytest.approx(
        integrated_lufs(quiet) + 15, abs=0.2)
    assert level.gain_db("other") is None
