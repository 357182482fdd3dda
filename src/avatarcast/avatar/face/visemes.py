"""Phonemes to visemes: what the lips do for each sound, and where each sound lies in time.

The viseme set is the usual fifteen of lip-sync work (sil PP FF TH DD kk CH SS nn RR aa E I O
U). A pose is what the still-image animator can draw: jaw drop, lip spread (-1 rounded .. 1
wide), lips pressed together, lower lip tucked under the upper teeth. Phonemes are espeak's IPA
as piper speaks them, one symbol at a time with its duration in samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O",
           "U")
SIL = 0


class Pose(NamedTuple):
    jaw: float  # 0 closed .. 1 wide open
    spread: float  # -1 rounded (oo) .. 1 wide (ee)
    press: float  # 1: lips pressed together (m b p)
    tuck: float  # 1: lower lip under the upper teeth (f v)


POSES: dict[str, Pose] = {
    "sil": Pose(0.0, 0.0, 0.0, 0.0),
    "PP": Pose(0.0, 0.0, 1.0, 0.0),
    "FF": Pose(0.0, 0.2, 0.0, 1.0),
    "TH": Pose(0.22, 0.2, 0.0, 0.0),
    "DD": Pose(0.25, 0.25, 0.0, 0.0),
    "kk": Pose(0.32, 0.1, 0.0, 0.0),
    "CH": Pose(0.2, -0.6, 0.0, 0.0),
    "SS": Pose(0.12, 0.55, 0.0, 0.0),
    "nn": Pose(0.22, 0.2, 0.0, 0.0),
    "RR": Pose(0.25, -0.55, 0.0, 0.0),
    "aa": Pose(0.9, 0.2, 0.0, 0.0),
    "E": Pose(0.55, 0.6, 0.0, 0.0),
    "I": Pose(0.3, 0.85, 0.0, 0.0),
    "O": Pose(0.6, -0.85, 0.0, 0.0),
    "U": Pose(0.28, -1.0, 0.0, 0.0),
}

_SYMBOLS = {
    "PP": "pbm", "FF": "fv", "TH": "θð", "DD": "tdɾʔ", "kk": "kɡgŋxh", "CH": "ʃʒç",
    "SS": "sz", "nn": "nlɫɬ", "RR": "ɹrɚɝ", "aa": "aɑæʌɐɒ", "E": "eɛəᵻ", "I": "iɪjy",
    "O": "oɔ", "U": "uʊwʉ",
}
_BY_SYMBOL = {ch: VISEMES.index(v) for v, chars in _SYMBOLS.items() for ch in chars}
VOWELS = frozenset(VISEMES.index(v) for v in ("aa", "E", "I", "O", "U", "RR"))
ROUNDED = frozenset(VISEMES.index(v) for v in ("O", "U", "CH", "RR"))
CLOSURES = frozenset(VISEMES.index(v) for v in ("PP", "FF"))
_STRESS = {"ˈ": 1.0, "ˌ": 0.85}
_UNSTRESSED = 0.7
_WEAK = frozenset("əᵻɐ")  # reduced vowels open little


def viseme_of(symbol: str) -> int | None:
    """The viseme of one phoneme symbol; None for a symbol that is not a sound (a stress or
    length mark, a word boundary, punctuation)."""
    return _BY_SYMBOL.get(symbol)


@dataclass(frozen=True)
class Phone:
    """One sound on the segment's timeline, in samples at the output rate."""

    start: int
    end: int
    viseme: int
    weight: float = 1.0  # how far the jaw goes: stressed vowels open wider


def phones_from_alignment(
    alignment: list[tuple[str, int]], offset: int
) -> tuple[list[Phone], list[tuple[int, int]]]:
    """Phones, and the (start, end) of each spoken word, from (symbol, samples) pairs that
    start at `offset`. Stress marks give their time to the sound after them, length marks to
    the one before; a word boundary inside speech is shared by its two neighbours; punctuation,
    sentence start and end are silence."""
    spans: list[list[float]] = []  # [start, end, viseme, weight]
    words: list[tuple[int, int]] = []
    t = offset
    stress: float | None = None
    pending = 0  # samples owed to the next sound
    word_start: int | None = None
    for symbol, samples in alignment:
        n = int(samples)
        v = viseme_of(symbol)
        if symbol in _STRESS:
            stress, pending = _STRESS[symbol], pending + n
        elif symbol == "ː" and spans and spans[-1][2] != SIL:
            spans[-1][1] += n
        elif symbol == " " and spans and spans[-1][2] != SIL:
            half = n // 2
            spans[-1][1] += half
            pending += n - half
            if word_start is not None:
                words.append((word_start, int(spans[-1][1])))
                word_start = None
        elif v is None:  # punctuation, sentence start or end, an unknown mark: a pause
            if word_start is not None and spans:
                words.append((word_start, int(spans[-1][1])))
                word_start = None
            spans.append([t - pending, t + n, SIL, 0.0])
            pending = 0
        else:
            start = t - pending
            weight = 1.0
            if v in VOWELS:
                weight = 0.55 if symbol in _WEAK else (stress or _UNSTRESSED)
                stress = None
            spans.append([start, t + n, v, weight])
            pending = 0
            if word_start is None:
                word_start = int(start)
        t += n
    if word_start is not None and spans:
        words.append((word_start, int(spans[-1][1])))
    if pending and spans:
        spans[-1][1] += pending
    phones = [Phone(int(a), int(b), int(v), w) for a, b, v, w in spans if b > a]
    return phones, words
