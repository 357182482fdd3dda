"""What the head and brows do with a speech: nods on its accents, a settle and a blink asked
for at a phrase's end, brows up on a question; from the mouth track without phone timings."""

from __future__ import annotations

import numpy as np

from avatarcast.avatar.alive.gestures import Gestures
from avatarcast.avatar.face.visemes import VISEMES, Phone

FPS, SPF = 30, 1600
RATE = FPS * SPF
AA, DD, SIL = VISEMES.index("aa"), VISEMES.index("DD"), VISEMES.index("sil")


def _phrase(start_s: float, accents: list[float], length_s: float) -> list[Phone]:
    """Speech from start_s for length_s, stressed vowels at `accents` (seconds), consonants
    and unstressed vowels between them, a pause after."""
    phones, t = [], start_s
    while t < start_s + length_s - 1e-9:
        stressed = any(abs(t - a) < 1e-6 for a in accents)
        end = t + 0.1
        phones.append(Phone(int(t * RATE), int(end * RATE), AA if stressed else DD,
                            1.0 if stressed else 0.7))
        t = end
    phones.append(Phone(int(t * RATE), int((t + 0.4) * RATE), SIL, 0.0))
    return phones


def _nods(g: Gestures, seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cues = g.cues(0, int(seconds * FPS))
    return (np.array([c.nod for c in cues]), np.array([c.brow for c in cues]),
            np.array([c.blink for c in cues]))


def test_nods_peak_on_the_accents_of_a_phrase() -> None:
    g = Gestures(SPF, FPS)
    g.add(_phrase(0.5, [0.6, 1.5, 2.4], 2.5), "a statement.")
    nod, brow, blink = _nods(g, 4.0)
    peaks = [k for k in range(1, len(nod) - 1)
             if nod[k] >= nod[k - 1] and nod[k] > nod[k + 1] and nod[k] > 0.3]
    times = np.array(peaks) / FPS
    # Each accent's nod peaks just after its vowel begins (the driver's follower adds 0.1 s).
    for accent in (0.6, 1.5, 2.4):
        assert np.any(np.abs(times - accent) < 0.12), (accent, times)
    assert not brow.any()  # a statement: the brows stay
    # The phrase's end (3.0 s) asks for a blink, once, just after it.
    (asked,) = np.flatnonzero(blink)
    assert 3.0 < asked / FPS < 3.3 and blink[asked] > 0.5


def test_close_accents_are_not_all_nodded_on() -> None:
    g = Gestures(SPF, FPS)
    accents = [0.5 + 0.2 * i for i in range(10)]  # five a second
    g.add(_phrase(0.5, accents, 2.0), "a long phrase.")
    nod, _, _ = _nods(g, 3.0)
    peaks = [k for k in range(1, len(nod) - 1) if nod[k] >= nod[k - 1] and nod[k] > nod[k + 1]]
    assert 2 <= len(peaks) <= 4, peaks


def test_a_question_lifts_the_brows_over_its_last_accent() -> None:
    g = Gestures(SPF, FPS)
    g.add(_phrase(0.2, [0.3, 1.1], 1.3), "Is that so?")
    _, brow, _ = _nods(g, 2.5)
    up = np.flatnonzero(brow > 0.5) / FPS
    assert len(up) and 0.9 < up[0] < 1.2 and up[-1] > 1.4, up
    g2 = Gestures(SPF, FPS)
    g2.add(_phrase(0.2, [0.3, 1.1], 1.3), "That is so.")
    assert not _nods(g2, 2.5)[1].any()


def test_without_phones_the_mouths_widest_openings_are_the_accents() -> None:
    g = Gestures(SPF, FPS)
    t = np.arange(90) / FPS
    jaw = (0.1 + 0.8 * np.clip(np.sin(2 * np.pi * 2 * t), 0, None)).astype(np.float32)
    jaw[60:] = 0.0  # then a pause
    g.add_sound(jaw, first=0)
    nod, _, blink = _nods(g, 3.0)
    assert nod.max() > 0.5
    assert blink.any() and np.flatnonzero(blink)[0] >= 60


def test_cues_ask_nothing_outside_speech_and_forget_what_is_past() -> None:
    g = Gestures(SPF, FPS)
    g.add(_phrase(1.0, [1.2], 1.2), "yes.")
    nod, brow, blink = _nods(g, 0.7)
    assert not nod.any() and not brow.any() and not blink.any()
    later = g.cues(200, 30)
    assert all(c.nod == 0 and c.brow == 0 and c.blink == 0 for c in later)
    assert not g._nods  # what ended before frame 200 is dropped: memory does not grow
