"""Every voice brought to one loudness: the programme's speech at `speech.loudness_lufs`
(EBU R128, integrated), whatever provider or voice says it, with its peaks kept under
`PEAK_CEILING` (about -1 dBTP).

Each sentence is brought to the target on its own (by at most MAX_GAIN_DB either way): piper
scales every sentence to a full-scale peak, so its sentences of one text differ by 5 LU or more
for no reason a listener would hear as meant. One too short to be measured (under 0.4 s: "Yes.")
gets its voice's gain: each voice (provider and voice name) has a running, gated loudness meter
fed with everything it said. A sentence whose peaks would pass the ceiling after the gain goes
through a limiter: the gain is lowered around those peaks only (2.5 ms blocks, lowered with
their neighbours and interpolated, so no step is heard)."""

from __future__ import annotations

import math
import threading

import numpy as np

from ..media.audio import Pcm
from ..media.loudness import LoudnessMeter, integrated_lufs

MAX_GAIN_DB = 15.0
PEAK_CEILING = 10 ** (-1.5 / 20)  # sample peak; the true peak lands near -1 dBTP
BLOCK = 120  # 2.5 ms at 48 kHz


class SpeechLevel:
    """`apply` runs on worker threads (each sentence's resampling): guarded by a lock."""

    def __init__(self, target_lufs: float, sample_rate: int) -> None:
        self.target = target_lufs
        self._measured = sample_rate == LoudnessMeter.RATE
        self._meters: dict[str, LoudnessMeter] = {}
        self._lock = threading.Lock()

    def apply(self, voice: str, pcm: Pcm) -> Pcm:
        """The sentence at the voice's gain (int16, same length)."""
        if not self._measured or pcm.size == 0:
            return pcm
        x = pcm.astype(np.float32) / 32768.0
        with self._lock:
            meter = self._meters.setdefault(voice, LoudnessMeter(peak=False))
            meter.push(x)
            loudness = integrated_lufs(x)
            if not math.isfinite(loudness):  # a sentence too short to measure on its own
                loudness = meter.integrated
        if not math.isfinite(loudness):
            return pcm  # (too little of the voice yet, or silence)
        gain_db = max(-MAX_GAIN_DB, min(MAX_GAIN_DB, self.target - loudness))
        scaled = x * np.float32(10 ** (gain_db / 20))
        y = limit(scaled, PEAK_CEILING)
        if y is not scaled and gain_db > 0:
            # What the limiter took from a sentence brought up, given back once (peaky voices
            # lose a dB or two of loudness to it), and limited again.
            lost = integrated_lufs(x) + gain_db - integrated_lufs(y)
            if math.isfinite(lost) and lost > 0.1:
                boost = min(gain_db + lost, MAX_GAIN_DB)
                y = limit(x * np.float32(10 ** (boost / 20)), PEAK_CEILING)
        return np.round(y * 32767.0).astype(np.int16)

    def gain_db(self, voice: str) -> float | None:
        with self._lock:
            meter = self._meters.get(voice)
            loudness = meter.integrated if meter is not None else -math.inf
        if not math.isfinite(loudness):
            return None
        return max(-MAX_GAIN_DB, min(MAX_GAIN_DB, self.target - loudness))


def limit(x: np.ndarray, ceiling: float) -> np.ndarray:
    """`x` with every sample under `ceiling`: the gain is lowered over the 2.5 ms blocks around
    a peak (each block's need taken with its neighbours', then interpolated between block
    centres: never above what any sample there needs)."""
    peak = float(np.abs(x).max(initial=0.0))
    if peak <= ceiling:
        return x
    n = x.size
    blocks = -(-n // BLOCK)
    padded = np.zeros(blocks * BLOCK, np.float32)
    padded[:n] = np.abs(x)
    need = padded.reshape(blocks, BLOCK).max(axis=1)
    wide = need.copy()
    wide[1:] = np.maximum(wide[1:], need[:-1])
    wide[:-1] = np.maximum(wide[:-1], need[1:])
    gain = np.minimum(1.0, ceiling / np.maximum(wide, 1e-9))
    centres = np.arange(blocks) * BLOCK + BLOCK / 2
    per_sample = np.interp(np.arange(n), centres, gain).astype(np.float32)
    out: np.ndarray = np.clip(x * per_sample, -ceiling, ceiling)
    return out
