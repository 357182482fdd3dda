"""What the head and brows do with the speech: the cues of a segment, frame by frame.

* Nods on accents: on the stressed vowels of the phones (piper's primary stress), not on
  every one: the first and the last of each phrase and the others at least 0.7 s apart. A nod
  starts a little before its vowel and peaks just after its start (Ishi 2014: head motion
  peaks on accented syllables), strongest on a phrase's last accent.
* A slight settle at the end of a phrase: a slower, smaller dip as the voice stops.
* Brows lift over the last accent of a question, and over an emphasised word (written in
  capitals, or ending an exclamation).
* A blink is asked for at the pause after a phrase, the more strongly the longer the phrase.

Without phone timings (voices that give none) the accents are the loudest openings of the
mouth track and the pauses its closed stretches. Owned by one segment's render job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ...media.cues import Cue
from ..face.visemes import SIL, VOWELS, Phone

Array = npt.NDArray[np.float32]

_PAUSE_S = 0.15  # silence this long ends a phrase
_SPACING_S = 0.7  # accents nodded on at least this far apart, within a phrase
# A nod's shape around its accent: it begins _EARLY_S before the vowel (the driver's follower
# takes 0.1 s of that back) and peaks just after the vowel's start.
_RISE_S, _FALL_S, _EARLY_S = 0.2, 0.3, 0.2
_SETTLE = (0.5, 0.2, 0.8)  # a phrase end's dip: strength, lead and length (seconds)
_BROW_RAMP_S = 0.15


@dataclass(frozen=True)
class _Bump:
    start: float  # seconds on the segment's timeline
    rise: float
    fall: float
    strength: float
    hold: float = 0.0

    def at(self, t: npt.NDArray[np.float64]) -> Array:
        u = t - self.start
        up = 0.5 - 0.5 * np.cos(np.pi * np.clip(u / self.rise, 0.0, 1.0))
        v = np.clip((u - self.rise - self.hold) / self.fall, 0.0, 1.0)
        down = 0.5 + 0.5 * np.cos(np.pi * v)
        return np.asarray(self.strength * up * down * (u >= 0), np.float32)

    @property
    def end(self) -> float:
        return self.start + self.rise + self.hold + self.fall


class Gestures:
    def __init__(self, spf: int, fps: int) -> None:
        self._rate = spf * fps  # samples a second
        self._fps = fps
        self._nods: list[_Bump] = []
        self._brows: list[_Bump] = []
        self._blinks: dict[int, float] = {}  # frame -> how strongly a blink is asked for
        self._phrase_from: float | None = None  # where the phrase under way began (seconds)
        self._phrase: list[float] = []  # its stressed vowels so far
        self._nodded: list[float] = []  # accents nodded on in the sentence under way

    def add(self, phones: list[Phone], text: str) -> None:
        """One spoken piece (a sentence) with its phones on the segment's timeline."""
        if not phones:
            return
        r = self._rate
        self._nodded = []
        for p in phones:
            start, length = p.start / r, (p.end - p.start) / r
            if p.viseme == SIL:
                if length >= _PAUSE_S:
                    self._end_phrase(start)
            else:
                self._voiced(start, accent=p.viseme in VOWELS and p.weight >= 1.0)
        end = phones[-1].end / r
        self._end_phrase(end)
        self._brows_for(text, end)

    def add_sound(self, jaw: Array, first: int) -> None:
        """A piece without phone timings: accents (the mouth's widest openings) and pauses
        (its closed stretches) from its mouth track, frames first .. first + len(jaw) - 1."""
        fps = self._fps
        values = np.asarray(jaw, np.float32).tolist()
        closed = 0
        for k, j in enumerate(values):
            t = (first + k) / fps
            if j < 0.02:
                closed += 1
                if closed == max(1, round(_PAUSE_S * fps)):
                    self._end_phrase(t - (closed - 1) / fps)
                continue
            closed = 0
            prev = values[k - 1] if k else 0.0
            nxt = values[k + 1] if k + 1 < len(values) else 0.0
            self._voiced(t, accent=j >= 0.45 and j >= prev and j > nxt)

    def _voiced(self, t: float, *, accent: bool) -> None:
        if self._phrase_from is None:
            self._phrase_from = t
        if accent:
            self._phrase.append(t)

    def _brows_for(self, text: str, end: float) -> None:
        said = text.rstrip()
        if not self._nodded or not said:
            return
        if said.endswith("?"):
            last = self._nodded[-1]
            self._brows.append(_Bump(last - _BROW_RAMP_S, _BROW_RAMP_S, 0.3, 1.0,
                                     hold=max(0.0, end - last)))
        bare = [w.strip(".,;:!?\"'") for w in said.split()]
        if said.endswith("!") or any(len(w) >= 2 and w.isalpha() and w.isupper() for w in bare):
            first = self._nodded[0]
            self._brows.append(_Bump(first - _BROW_RAMP_S, _BROW_RAMP_S, 0.4, 0.7, hold=0.3))

    def _end_phrase(self, end: float) -> None:
        """Nods for the phrase's accents and a settle at its end."""
        began, accents = self._phrase_from, self._phrase
        self._phrase_from, self._phrase = None, []
        if began is None:
            return
        chosen: list[float] = []
        for i, t in enumerate(accents):
            last = chosen[-1] if chosen else -math.inf
            if t - last < 0.35:
                continue  # two nods this close would read as a shake
            if i in (0, len(accents) - 1) or t - last >= _SPACING_S:
                chosen.append(t)
        for i, t in enumerate(chosen):
            strength = 1.0 if i == len(chosen) - 1 else 0.8 if i == 0 else 0.55
            self._nods.append(_Bump(t - _EARLY_S, _RISE_S, _FALL_S, strength))
        self._nodded += chosen
        length = end - began
        if length >= 1.0:
            s, lead, span = _SETTLE
            self._nods.append(_Bump(end - lead, span / 2, span / 2, s))
            frame = int((end + 0.1) * self._fps)
            self._blinks[frame] = min(0.95, 0.5 + 0.45 * min(1.0, length / 5.0))

    def cues(self, first: int, n: int) -> list[Cue]:
        """Cues for frames first .. first + n - 1 (each at its sound's middle)."""
        if n <= 0:
            return []
        t = (np.arange(first, first + n, dtype=np.float64) + 0.5) / self._fps
        t0, t1 = float(t[0]), float(t[-1])
        # What ended before these frames is never asked for again (frames come in order).
        self._nods = [b for b in self._nods if b.end >= t0]
        self._brows = [b for b in self._brows if b.end >= t0]
        self._blinks = {k: v for k, v in self._blinks.items() if k >= first}
        nod = np.zeros(n, np.float32)
        brow = np.zeros(n, np.float32)
        for bump in self._nods:
            if bump.start <= t1 and bump.end >= t0:
                nod = np.maximum(nod, bump.at(t))
        for bump in self._brows:
            if bump.start <= t1 and bump.end >= t0:
                brow = np.maximum(brow, bump.at(t))
        return [Cue(float(a), float(b), self._blinks.get(first + k, 0.0))
                for k, (a, b) in enumerate(zip(nod.tolist(), brow.tolist(), strict=True))]
