"""The mouth track: one pose and one viseme per video frame of a segment, cut from the same
samples that go to the encoder, so mouth and sound cannot drift apart.

With phoneme timings (piper's alignments) the poses follow the sounds, with coarticulation:
closures of m/b/p and f/v are always shown (at least two frames, reached fully, approached
ahead of the sound by the smoothing, which looks both ways), rounding for o/u/w starts up to
four frames early over the consonants before it, a sound shorter than a frame borrows from its
neighbours. Without timings (espeak, edge, HTTP voices) the track comes from the audio itself:
openness from the speech band's energy, spread from its spectral centroid.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ...media.audio import Pcm
from .mouth import mouth_shapes
from .visemes import CLOSURES, POSES, ROUNDED, SIL, VISEMES, VOWELS, Phone

Array = npt.NDArray[np.float32]
_POSE_TABLE = np.array([POSES[v] for v in VISEMES], np.float32)  # (15, 4)
_CONTEXT = 4  # frames looked at on each side of a requested range
_ROUND_AHEAD = 4  # frames over which rounding anticipates a rounded vowel
_SIGMA = 0.8  # frames: how much neighbouring targets blend
# The lips lead the sound: a frame shows the sound 40 ms after its centre. (Piper's phoneme
# spans also end with the transition into the next sound; measured against the envelope of
# piper's own speech, jaw and sound line up best with this lead: python -m bench lipsync.)
LEAD_S = 0.04


@dataclass
class MouthTrack:
    jaw: Array
    spread: Array
    press: Array
    tuck: Array
    viseme: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.jaw)

    @staticmethod
    def closed(n: int) -> MouthTrack:
        z = np.zeros(n, np.float32)
        return MouthTrack(z, z.copy(), z.copy(), z.copy(), np.zeros(n, np.int8))

    def names(self) -> list[str]:
        return [VISEMES[v] for v in self.viseme.tolist()]


class Timeline:
    """The phones of one segment, as speech arrives; owned by the segment's render job."""

    def __init__(self, spf: int, fps: int) -> None:
        self._spf = spf
        self._fps = fps
        self._lead = round(LEAD_S * spf * fps)
        self._phones: list[Phone] = []
        self._starts: list[int] = []

    def add(self, phones: list[Phone]) -> None:
        for p in phones:
            self._phones.append(p)
            self._starts.append(p.start)

    def track(self, first: int, n: int, audio_16k: Pcm, rate_16k: int) -> MouthTrack:
        """Poses for frames first .. first+n-1; `audio_16k` spans exactly those frames and is
        used where no phone covers them (a provider without timings)."""
        if n <= 0:
            return MouthTrack.closed(0)
        lo = first - _CONTEXT
        vis, weight, covered = self._targets(lo, n + 2 * _CONTEXT)
        if not covered[_CONTEXT : _CONTEXT + n].any():
            return from_audio(audio_16k, n, self._fps, rate_16k)
        track = _coarticulate(vis, weight)
        keep = slice(_CONTEXT, _CONTEXT + n)
        return MouthTrack(track.jaw[keep], track.spread[keep], track.press[keep],
                          track.tuck[keep], track.viseme[keep])

    def _targets(self, lo: int, count: int) -> tuple[npt.NDArray[np.int8], Array,
                                                      npt.NDArray[np.bool_]]:
        vis = np.zeros(count, np.int8)
        weight = np.zeros(count, np.float32)
        covered = np.zeros(count, bool)
        spf = self._spf
        for k in range(count):
            phone = self._at((lo + k) * spf + spf // 2 + self._lead)
            if phone is not None:
                vis[k], weight[k], covered[k] = phone.viseme, phone.weight, True
        # Closures are never skipped: a /p/ shorter than a frame still closes the lips, for
        # two frames, on the frames that overlap it most.
        for phone in self._overlapping(lo * spf, (lo + count) * spf):
            if phone.viseme not in CLOSURES:
                continue
            mid = ((phone.start + phone.end) / 2 - self._lead) / spf - lo
            k = int(np.clip(np.floor(mid), 0, count - 1))
            other = k + 1 if mid - k >= 0.5 else k - 1
            for j in (k, other):
                if 0 <= j < count:
                    vis[j], weight[j], covered[j] = phone.viseme, 1.0, True
        return vis, weight, covered

    def _at(self, sample: int) -> Phone | None:
        i = bisect.bisect_right(self._starts, sample) - 1
        if i >= 0 and self._phones[i].end > sample:
            return self._phones[i]
        return None

    def _overlapping(self, start: int, end: int) -> list[Phone]:
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        out = []
        while i < len(self._phones) and self._phones[i].start < end:
            if self._phones[i].end > start:
                out.append(self._phones[i])
            i += 1
        return out


def _coarticulate(vis: npt.NDArray[np.int8], weight: Array) -> MouthTrack:
    poses = _POSE_TABLE[vis.astype(np.int64)].copy()
    vowel = np.isin(vis, list(VOWELS))
    poses[vowel, 0] *= weight[vowel]
    forced = np.isin(vis, list(CLOSURES))
    # A one-frame sound that is not a closure borrows half its shape from its neighbours.
    for k in range(1, len(vis) - 1):
        if vis[k] != vis[k - 1] and vis[k] != vis[k + 1] and not forced[k] and vis[k] != SIL:
            poses[k] = 0.5 * poses[k] + 0.25 * (poses[k - 1] + poses[k + 1])
    # Rounding starts early: the lips round over the consonants before an o/u/w.
    rounded = np.isin(vis, list(ROUNDED)) & vowel
    for k in np.flatnonzero(rounded).tolist():
        for j in range(1, _ROUND_AHEAD + 1):
            b = k - j
            if b < 0 or vowel[b] or vis[b] == SIL:
                break
            poses[b, 1] = min(poses[b, 1], poses[k, 1] * (1 - j / (_ROUND_AHEAD + 1)))
    smooth = _gaussian(poses, _SIGMA)
    press = np.maximum(smooth[:, 2], forced * (vis == VISEMES.index("PP")))
    tuck = np.maximum(smooth[:, 3], forced * (vis == VISEMES.index("FF")))
    jaw = smooth[:, 0] * (1 - press) * (1 - 0.7 * tuck)
    silent = _silent_runs(vis)
    jaw[silent], press[silent] = 0.0, 0.0
    return MouthTrack(
        np.clip(jaw, 0, 1).astype(np.float32), np.clip(smooth[:, 1], -1, 1).astype(np.float32),
        np.clip(press, 0, 1).astype(np.float32), np.clip(tuck, 0, 1).astype(np.float32),
        vis.copy(),
    )


def _silent_runs(vis: npt.NDArray[np.int8]) -> npt.NDArray[np.bool_]:
    """Frames inside a pause of three frames or more: there the mouth is at rest exactly."""
    sil = vis == SIL
    out = sil.copy()
    for k in range(len(vis)):
        if sil[k]:
            out[k] = bool(sil[max(0, k - 1) : k + 2].all())
    return np.asarray(out, bool)


def _gaussian(x: Array, sigma: float) -> Array:
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    padded = np.pad(x, ((radius, radius), (0, 0)), mode="edge")
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        out[:, c] = np.convolve(padded[:, c], taps, mode="valid")
    return out


def from_audio(audio_16k: Pcm, n: int, fps: int, rate: int) -> MouthTrack:
    """A track from the sound alone, for speech that comes without phoneme timings."""
    opening, width = mouth_shapes(audio_16k, n, fps, rate)
    vis = np.full(n, VISEMES.index("aa"), np.int8)
    vis[width > 0.4] = VISEMES.index("E")
    vis[width < -0.4] = VISEMES.index("O")
    vis[opening < 0.08] = SIL
    z = np.zeros(n, np.float32)
    return MouthTrack(opening.astype(np.float32), width.astype(np.float32), z, z.copy(), vis)
