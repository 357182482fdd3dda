"""From speech to mouth shape, one value pair per video frame.

Openness follows the energy of the speech band (250 Hz to 4 kHz) in a Hann window around
each frame, mapped between a floor (closed) and a full level; width follows the spectral
centroid against the voice's own median (sounds brighter than its average, such as "ee",
spread the lips, darker ones such as "oo" round them).
Both pass an attack/release smoother, so the mouth never jitters, and a one-frame lookahead,
since lips move slightly before the sound. In silence the mouth is fully closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class MouthTuning:
    floor_db: float = -45.0  # band level at and below which the mouth is closed
    full_db: float = -12.0  # band level at which it is fully open
    attack_s: float = 0.03
    release_s: float = 0.07
    lookahead: float = 0.6  # share of the next frame's opening shown one frame early
    band_hz: tuple[float, float] = (250.0, 4000.0)
    centroid_mid_hz: float = 1300.0
    centroid_span_hz: float = 900.0


def mouth_shapes(
    audio: npt.NDArray[np.int16] | npt.NDArray[np.float32], frames: int, fps: int, rate: int,
    tuning: MouthTuning = MouthTuning(),
) -> tuple[Array, Array]:
    """Openness in [0, 1] and width in [-1 (round), 1 (wide)] for each of `frames` frames
    spanned by `audio` (mono, int16 or float in [-1, 1], at `rate`)."""
    if frames <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    hop = rate / fps
    win = max(32, int(2 * hop))
    centres = (np.arange(frames) + 0.5) * hop
    starts = np.round(centres - win / 2).astype(np.int64)
    idx = starts[:, None] + np.arange(win)[None, :]
    x = audio.astype(np.float32) / (32768.0 if audio.dtype == np.int16 else 1.0)
    padded = np.concatenate([np.zeros(win, np.float32), x,
                             np.zeros(win, np.float32)])
    chunks = padded[np.clip(idx + win, 0, len(padded) - 1)]
    window = np.hanning(win).astype(np.float32)
    spec = np.abs(np.fft.rfft(chunks * window, axis=1)) ** 2
    freqs = np.fft.rfftfreq(win, 1.0 / rate)
    band = (freqs >= tuning.band_hz[0]) & (freqs <= tuning.band_hz[1])
    # Parseval: mean power of the windowed signal; the band's share of it.
    norm = float((window**2).sum()) * win / 2
    band_power = spec[:, band].sum(1) / norm
    level_db = 10 * np.log10(band_power + 1e-12)
    target = np.clip((level_db - tuning.floor_db) / (tuning.full_db - tuning.floor_db), 0, 1)
    target = target**0.8
    centroid = (spec[:, band] * freqs[band]).sum(1) / np.maximum(spec[:, band].sum(1), 1e-12)
    # Spread and rounding are relative to this voice: its median brightness is neutral (a
    # dark voice would otherwise look pursed all along), or the tuning's when too little of
    # the audio is voiced to tell.
    voiced = target > 0.2
    mid = float(np.median(centroid[voiced])) if voiced.sum() >= 5 else tuning.centroid_mid_hz
    width = np.clip((centroid - mid) / tuning.centroid_span_hz, -1, 1)
    width = width * (target > 0)
    ahead = np.concatenate([target[1:], [0.0]])
    target = np.maximum(target, tuning.lookahead * ahead)
    dt = 1.0 / fps
    return (
        _attack_release(target, dt, tuning.attack_s, tuning.release_s),
        _attack_release(width, dt, tuning.attack_s * 2, tuning.release_s * 2),
    )


def _attack_release(target: npt.NDArray[np.floating], dt: float, attack: float,
                    release: float) -> Array:
    up = 1 - math.exp(-dt / attack)
    down = 1 - math.exp(-dt / release)
    out = np.empty(len(target), np.float32)
    y = 0.0
    for i, t in enumerate(target.tolist()):
        y += (t - y) * (up if abs(t) > abs(y) else down)
        if t == 0 and abs(y) < 0.02:
            y = 0.0  # closed in silence, exactly
        out[i] = y
    return out
