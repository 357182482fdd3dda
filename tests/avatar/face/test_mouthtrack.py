"""Phoneme timings to a mouth track: visemes, coarticulation, and piper's real alignments
through the speech chain at the stream's rate."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np

from avatarcast.avatar.face.mouthtrack import Timeline
from avatarcast.avatar.face.visemes import VISEMES, phones_from_alignment
from avatarcast.settings import SpeechSettings
from avatarcast.speech.base import rescale_alignment
from avatarcast.speech.chain import Speech, make_providers

FPS, RATE = 30, 48000
SPF = RATE // FPS
# piper's joe voice saying "mom" (22 050 Hz), as its alignment output gives it
MOM = [("^", 768), ("m", 1024), ("ˈ", 1536), ("ɑ", 1280), ("ː", 1024), ("m", 1536), ("$", 768)]


def _track(alignment: list[tuple[str, int]], rate: int = RATE) -> tuple[Timeline, int]:
    total = sum(n for _, n in alignment)
    tl = Timeline(SPF, FPS)
    phones, _ = phones_from_alignment(alignment, 0)
    tl.add(phones)
    return tl, total // SPF


def test_marks_give_their_time_to_the_sounds_and_nothing_is_lost() -> None:
    phones, words = phones_from_alignment(MOM, 1000)
    assert [VISEMES[p.viseme] for p in phones] == ["sil", "PP", "aa", "PP", "sil"]
    assert phones[0].start == 1000 and phones[-1].end == 1000 + sum(n for _, n in MOM)
    assert all(a.end == b.start for a, b in itertools.pairwise(phones))
    vowel = phones[2]
    assert vowel.end - vowel.start == 1536 + 1280 + 1024  # stress mark before, length after
    assert vowel.weight == 1.0  # stressed
    assert words == [(phones[1].start, phones[3].end)]


def test_word_boundaries_are_shared_and_words_found() -> None:
    al = [("^", 500), ("h", 800), ("ˈ", 400), ("aɪ"[0], 900), ("aɪ"[1], 700), (" ", 600),
          ("j", 500), ("u", 1200), (".", 2000), ("$", 300)]
    phones, words = phones_from_alignment(al, 0)
    assert len(words) == 2 and words[0][1] == words[1][0]  # the space split between them
    assert sum(p.end - p.start for p in phones) == sum(n for _, n in al)


def test_closures_are_shown_even_when_shorter_than_a_frame() -> None:
    # "a p a" with a /p/ of 10 ms, a third of a frame: the lips still close, fully, for two
    # frames, and open around it.
    al = [("^", 4800), ("ˈ", 100), ("ɑ", 9000), ("p", 480), ("ɑ", 9000), ("$", 4800)]
    tl, n = _track(al)
    tr = tl.track(0, n, np.zeros(n * 533, np.int16), 16000)
    closed = np.flatnonzero(tr.press >= 0.999)
    assert len(closed) >= 2 and np.all(np.diff(closed) == 1)
    assert np.all(tr.jaw[closed] < 0.05)
    assert tr.jaw[closed[0] - 3] > 0.5 and tr.jaw[closed[-1] + 3] > 0.5
    # Silence at both ends: the mouth at rest, exactly.
    assert tr.jaw[0] == tr.press[0] == tr.jaw[-1] == 0.0


def test_rounding_starts_before_a_rounded_vowel() -> None:
    # "s t u": the lips round during /s t/ already.
    al = [("^", 4800), ("s", 3200), ("t", 1600), ("ˈ", 100), ("u", 8000), ("$", 4800)]
    tl, n = _track(al)
    tr = tl.track(0, n, np.zeros(n * 533, np.int16), 16000)
    names = tr.names()
    consonants = [k for k, v in enumerate(names) if v in ("SS", "DD")]
    vowel = [k for k, v in enumerate(names) if v == "U"]
    assert consonants and vowel
    assert tr.spread[consonants[-1]] < -0.3  # already rounding on the /t/
    assert tr.spread[vowel].min() < -0.8


def test_a_track_requested_in_pieces_equals_the_whole() -> None:
    al = MOM * 6
    tl, n = _track(al)
    silent = np.zeros(n * 533, np.int16)
    whole = tl.track(0, n, silent, 16000)
    parts = [tl.track(a, b - a, silent, 16000) for a, b in ((0, 7), (7, n // 2), (n // 2, n))]
    assert np.allclose(np.concatenate([p.jaw for p in parts]), whole.jaw)


def test_without_timings_the_track_comes_from_the_sound() -> None:
    from ...faces import voiced

    audio = voiced(1.0)
    n = len(audio) * FPS // 16000
    tr = Timeline(SPF, FPS).track(0, n, audio, 16000)
    assert tr.jaw.max() > 0.5 and tr.jaw[0] == 0.0
    assert {"sil"} < set(tr.names())


def test_rescaled_timings_add_up_to_the_resampled_length() -> None:
    scaled = rescale_alignment(MOM, 7000 * RATE // 22050)
    assert sum(n for _, n in scaled) == 7000 * RATE // 22050
    assert [p for p, _ in scaled] == [p for p, _ in MOM]


def test_piper_speaks_with_phoneme_timings_at_the_stream_rate() -> None:
    settings = SpeechSettings(providers=["piper"])
    speech = Speech(make_providers(settings, "ffmpeg"), settings, RATE)

    async def run() -> list:  # type: ignore[type-arg]
        await speech.start()
        try:
            return [s async for s in speech.synthesize("Mom bought blue boots. Fine!", None)]
        finally:
            await speech.aclose()

    pieces = asyncio.run(run())
    assert len(pieces) == 2 and [p.text for p in pieces] == ["Mom bought blue boots.", "Fine!"]
    for p in pieces:
        assert p.alignment is not None
        assert sum(n for _, n in p.alignment) == len(p.pcm)
    phones, words = phones_from_alignment(pieces[0].alignment or [], 0)
    names = [VISEMES[ph.viseme] for ph in phones]
    assert names.count("PP") == 5 and "U" in names  # m m b b b; "blue", "boots"
    assert len(words) == 4
