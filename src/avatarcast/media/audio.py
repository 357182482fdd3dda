"""PCM helpers: mono int16 at the output rate, cut into exactly one slice per video frame."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
FloatPcm = npt.NDArray[np.float32]


def samples_per_frame(sample_rate: int, fps: int) -> int:
    if sample_rate % fps:
        raise ValueError(f"{sample_rate} Hz is not a whole number of samples per frame at {fps}")
    return sample_rate // fps


def to_int16(samples: npt.NDArray[np.floating] | Pcm) -> Pcm:
    if samples.dtype == np.int16:
        return samples.astype(np.int16, copy=False)
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return np.round(clipped * 32767.0).astype(np.int16)


def resample(samples: npt.NDArray[np.floating] | Pcm, src_rate: int, dst_rate: int) -> Pcm:
    """Resample mono audio (float in [-1, 1] or int16) to int16 at dst_rate."""
    pcm = to_int16(samples)
    if src_rate == dst_rate or pcm.size == 0:
        return pcm
    import soxr  # lazy: only the speech path needs it

    out = soxr.resample(pcm.astype(np.float32) / 32768.0, src_rate, dst_rate, quality="HQ")
    return to_int16(np.asarray(out, dtype=np.float32))


class FrameSlicer:
    """Accumulates PCM and hands out whole frames of `spf` samples; keeps the remainder."""

    def __init__(self, spf: int) -> None:
        self.spf = spf
        self._rest: Pcm = np.zeros(0, dtype=np.int16)

    def push(self, pcm: Pcm) -> list[Pcm]:
        buf = np.concatenate([self._rest, pcm]) if self._rest.size else pcm
        whole = buf.size // self.spf
        frames = [buf[i * self.spf : (i + 1) * self.spf].copy() for i in range(whole)]
        self._rest = buf[whole * self.spf :].copy()
        return frames

    def flush(self) -> list[Pcm]:
        """The remainder padded with silence to one whole frame (nothing if none is left)."""
        if not self._rest.size:
            return []
        last = np.zeros(self.spf, dtype=np.int16)
        last[: self._rest.size] = self._rest
        self._rest = np.zeros(0, dtype=np.int16)
        return [last]


def silence(spf: int) -> Pcm:
    return np.zeros(spf, dtype=np.int16)


def fade(pcm: Pcm, start_gain: float, end_gain: float) -> Pcm:
    gains = np.linspace(start_gain, end_gain, pcm.size, dtype=np.float32)
    return np.round(pcm.astype(np.float32) * gains).astype(np.int16)
