"""The programme's loudness as it goes to the encoder (speech, music, everything the ticks
carry): a tap on the pacer thread, read by the status and /metrics. Integrated over the whole
run (EBU R128 gating), short-term over the last 3 s, and the largest true peak."""

from __future__ import annotations

import math
import threading

import numpy as np

from ..media.audio import Pcm
from ..media.frames import Frame
from ..media.loudness import LoudnessMeter


class ProgrammeMeter:
    """`tap` is the pacer thread's; the figures are read from any thread."""

    def __init__(self, sample_rate: int) -> None:
        self._meter = LoudnessMeter() if sample_rate == LoudnessMeter.RATE else None
        self._lock = threading.Lock()

    def tap(self, n: int, frame: Frame, audio: Pcm) -> None:
        if self._meter is None:
            return
        samples = audio.astype(np.float32) / 32768.0
        with self._lock:
            self._meter.push(samples)

    def figures(self) -> dict[str, float | None]:
        """integrated_lufs, short_term_lufs, true_peak_dbtp (None: nothing measured yet, or
        a sample rate the meter does not measure)."""
        if self._meter is None:
            return {"integrated_lufs": None, "short_term_lufs": None, "true_peak_dbtp": None}
        with self._lock:
            m = self._meter
            values = (m.integrated, m.short_term, m.true_peak_db)
        return {k: round(v, 1) if math.isfinite(v) else None for k, v in
                zip(("integrated_lufs", "short_term_lufs", "true_peak_dbtp"), values,
                    strict=True)}
