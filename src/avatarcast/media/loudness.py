"""Loudness as ITU-R BS.1770-4 / EBU R128 measure it, in numpy alone: K-weighted mean square
over 400 ms blocks every 100 ms, gated (absolute -70 LUFS, relative -10 LU) into the integrated
loudness; and the true peak, from the signal oversampled four times.

The K-weighting (a +4 dB shelf above about 1.5 kHz, then a high-pass near 38 Hz) is the
standard's pair of biquads, as their impulse response (4096 taps, where it has decayed below
1e-8) convolved with the stream through FFTs, its history carried from one piece to the next:
the same filtering, sample for sample, as running the biquads, without a loop per sample.
Against FFmpeg's ebur128 filter this agrees within 0.1 LU on tones from 60 Hz to 9 kHz, noise
and gated signals (tests/media)."""

from __future__ import annotations

import math
from collections import deque
from functools import cache

import numpy as np
import numpy.typing as npt

ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
# The standard's K-weighting biquads at 48 kHz (b, a).
_SHELF = ((1.53512485958697, -2.69169618940638, 1.19839281085285),
          (1.0, -1.69065929318241, 0.73248077421585))
_HIGHPASS = ((1.0, -2.0, 1.0), (1.0, -1.99004745483398, 0.99007225036621))
SILENT = -math.inf

Samples = npt.NDArray[np.float32]


TAPS = 4096


@cache
def _k_weighting() -> npt.NDArray[np.float64]:
    """The K-weighting's impulse response at 48 kHz (the two biquads run on an impulse)."""
    h = np.zeros(TAPS)
    h[0] = 1.0
    for b, a in (_SHELF, _HIGHPASS):
        out = np.zeros(TAPS)
        x1 = x2 = y1 = y2 = 0.0
        for i, x in enumerate(h):
            y = b[0] * x + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
            x2, x1, y2, y1 = x1, float(x), y1, y
            out[i] = y
        h = out
    return h


@cache
def _k_spectrum(n: int) -> npt.NDArray[np.complex128]:
    return np.fft.rfft(_k_weighting(), n)


class _KFilter:
    """The K-weighting as a stream: overlap-save with the last TAPS - 1 samples kept."""

    BLOCK = 1 << 16

    def __init__(self) -> None:
        self._history = np.zeros(TAPS - 1)

    def __call__(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = []
        for i in range(0, x.size, self.BLOCK):
            block = x[i:i + self.BLOCK]
            ext = np.concatenate([self._history, block])
            n = 1 << math.ceil(math.log2(ext.size + TAPS - 1))
            y = np.fft.irfft(np.fft.rfft(ext, n) * _k_spectrum(n), n)
            out.append(y[TAPS - 1:ext.size])
            self._history = ext[-(TAPS - 1):]
        return np.concatenate(out) if out else np.zeros(0)


def to_lufs(mean_square: float) -> float:
    return -0.691 + 10 * math.log10(mean_square) if mean_square > 0 else SILENT


class LoudnessMeter:
    """Mono audio at 48 kHz, pushed in pieces of any size (float in [-1, 1]). Keeps a histogram
    of block loudness, so memory stays bounded however long it runs."""

    RATE = 48_000
    HOP = RATE // 10  # 100 ms

    def __init__(self, peak: bool = True) -> None:
        self._k = _KFilter()
        self._rest = np.zeros(0)  # K-weighted samples short of a whole 100 ms
        self._hops: deque[float] = deque(maxlen=30)  # the last 3 s of 100 ms energies
        self._hist = np.zeros(1000, np.int64)  # block counts by loudness, 0.1 LU bins
        self._sums = np.zeros(1000, np.float64)  # their mean squares, summed
        self._peak = TruePeak() if peak else None
        self.momentary = SILENT  # the last 400 ms

    def push(self, samples: Samples) -> None:
        if self._peak is not None:
            self._peak.push(samples)
        weighted = self._k(np.asarray(samples, np.float64))
        buf = np.concatenate([self._rest, weighted]) if self._rest.size else weighted
        whole = buf.size // self.HOP
        if whole:
            energies = (buf[: whole * self.HOP].reshape(whole, self.HOP) ** 2).mean(axis=1)
            for e in energies:
                self._hops.append(float(e))
                if len(self._hops) >= 4:
                    self._block(sum(list(self._hops)[-4:]) / 4)
        self._rest = buf[whole * self.HOP:]

    def _block(self, mean_square: float) -> None:
        lufs = to_lufs(mean_square)
        self.momentary = lufs
        if lufs <= ABSOLUTE_GATE:
            return
        i = min(len(self._hist) - 1, int((lufs - ABSOLUTE_GATE) * 10))
        self._hist[i] += 1
        self._sums[i] += mean_square

    @property
    def integrated(self) -> float:
        """Integrated loudness in LUFS so far (-inf before any block passes the gate)."""
        n = self._hist.sum()
        if n == 0:
            return SILENT
        ungated = to_lufs(float(self._sums.sum() / n))
        start = max(0, int((ungated + RELATIVE_GATE - ABSOLUTE_GATE) * 10) + 1)
        kept = self._hist[start:].sum()
        return to_lufs(float(self._sums[start:].sum() / kept)) if kept else SILENT

    @property
    def short_term(self) -> float:
        """The loudness of the last 3 s (ungated), in LUFS."""
        if len(self._hops) < self._hops.maxlen:  # type: ignore[operator]
            return SILENT
        return to_lufs(sum(self._hops) / len(self._hops))

    @property
    def true_peak_db(self) -> float:
        """The largest true peak so far, in dBTP."""
        peak = self._peak.peak if self._peak is not None else 0.0
        return 20 * math.log10(peak) if peak > 0 else SILENT


def _phases(taps: int = 12) -> npt.NDArray[np.float64]:
    """A 4x interpolator's four phases (windowed sinc, `taps` each), as BS.1770's annex 2."""
    k = np.arange(taps) - taps // 2 + 1
    return np.array([np.sinc(k - p / 4) * np.kaiser(taps, 5.0) for p in range(4)])


_PHASES = _phases()


class TruePeak:
    """The largest sample of a stream oversampled four times (band-limited), as BS.1770's
    true-peak meter estimates it; carries its history across pieces."""

    def __init__(self) -> None:
        self._tail = np.zeros(_PHASES.shape[1] - 1)
        self.peak = 0.0

    def push(self, samples: npt.NDArray[np.floating]) -> None:
        x = np.concatenate([self._tail, np.asarray(samples, np.float64)])
        for h in _PHASES:
            self.peak = max(self.peak, float(np.abs(np.convolve(x, h, "valid")).max(
                initial=0.0)))
        self._tail = x[-self._tail.size:]


def integrated_lufs(samples: Samples) -> float:
    """The integrated loudness of a whole mono 48 kHz signal."""
    meter = LoudnessMeter(peak=False)
    meter.push(samples)
    return meter.integrated
