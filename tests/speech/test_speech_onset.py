"""An utterance starts with its sound: the silence a voice puts before the first phoneme is
trimmed to a few ms (it would otherwise delay every message's first sound on air), and the
phoneme timings move with it, so the mouth stays on the sound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from avatarcast.settings import SpeechSettings
from avatarcast.speech.base import SpeechChunk, Spoken
from avatarcast.speech.chain import Speech, make_providers
from avatarcast.speech.onset import LEAD_IN_S, trim_lead_in

RATE = 48_000


def _onset_s(pcm: np.ndarray, rate: int, level: float = 0.001) -> float:
    """When the first 5 ms window louder than `level` (of full scale) starts."""
    x = pcm.astype(np.float32) / 32768.0
    w = rate // 200
    for i in range(0, len(x) - w, w):
        if float(np.sqrt(np.mean(x[i:i + w] ** 2))) >= level:
            return i / rate
    return len(x) / rate


def _piper(tmp_path: Path, text: str) -> list[Spoken]:
    async def run() -> list[Spoken]:
        settings = SpeechSettings(providers=["piper"])
        speech = Speech(make_providers(settings, "ffmpeg", tmp_path / "cache"), settings, RATE)
        await speech.start()
        try:
            return [s async for s in speech.synthesize(text, None)]
        finally:
            await speech.aclose()

    return asyncio.run(run())


def test_piper_speech_starts_within_a_few_ms(tmp_path: Path) -> None:
    first, *rest = _piper(tmp_path, "Hello, I am live. And here is the news.")
    onset = _onset_s(first.pcm, RATE)
    assert onset <= LEAD_IN_S + 0.006, f"{onset * 1000:.1f} ms of silence before the speech"
    assert onset >= LEAD_IN_S - 0.006  # trimmed to the lead-in, not into the sound
    assert first.alignment is not None
    assert sum(n for _, n in first.alignment) == len(first.pcm)
    # Later sentences keep their own pauses: only the utterance's start is trimmed.
    assert rest and _onset_s(rest[0].pcm, RATE) > LEAD_IN_S + 0.006
    # The last chunk says so: the segment need not wait for more speech.
    assert [s.last for s in (first, *rest)] == [False] * len(rest) + [True]


def _chunk(silence: int, sound: int, rate: int = 22050) -> SpeechChunk:
    t = np.arange(sound) / rate
    samples = np.concatenate([np.zeros(silence, np.float32),
                              (0.5 * np.cos(2 * np.pi * 220 * t)).astype(np.float32)])
    return SpeechChunk(samples, rate, [("^", silence + 100), ("a", sound - 100)], "a")


def test_the_timings_move_with_the_trim() -> None:
    chunk = trim_lead_in(_chunk(2000, 5000))
    kept = round(LEAD_IN_S * 22050)
    assert len(chunk.samples) == 5000 + kept
    assert chunk.alignment == [("^", kept + 100), ("a", 4900)]
    assert chunk.text == "a"


def test_a_silence_longer_than_the_first_phoneme_drops_it() -> None:
    chunk = _chunk(2000, 5000)
    chunk.alignment = [("^", 500), ("_", 1600), ("a", 4900)]
    out = trim_lead_in(chunk)
    kept = round(LEAD_IN_S * 22050)
    assert out.alignment == [("_", 2100 - (2000 - kept)), ("a", 4900)]
    assert sum(n for _, n in out.alignment) == len(out.samples)


def test_sound_from_the_start_and_all_silence_are_left_alone() -> None:
    loud = _chunk(0, 5000)
    assert trim_lead_in(loud) is loud
    quiet = SpeechChunk(np.zeros(4000, np.float32), 22050, [("^", 4000)])
    assert trim_lead_in(quiet) is quiet
    ints = SpeechChunk((np.concatenate([np.zeros(3000), np.full(3000, 0.3)]) * 32767)
                       .astype(np.int16), 16000)
    out = trim_lead_in(ints)
    assert out.samples.dtype == np.int16 and len(out.samples) == 3000 + round(LEAD_IN_S * 16000)
