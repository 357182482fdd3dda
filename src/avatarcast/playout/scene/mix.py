"""The music bed mixed under the programme on the pacer thread, beside the picture's scene: so
every output hears the same sound, frame-accurate. It ducks under speech like a broadcast
compressor keyed by the voice: down by `duck_db` with the `attack_ms` time constant when a
text goes on air, held there while it speaks and for `hold_ms` after, back with `release_ms`;
muted outright under an interrupt. Gains move sample by sample within a tick (no steps heard).

While the bed is audible a tick is never "certain to be silent": the encoder then gets no
silence ahead of time (TickOutput.quiet_after), and a cut's tail reaches a listener up to two
ticks later than without music."""

from __future__ import annotations

import logging
import math

import numpy as np

from ...media.audio import samples_per_frame, to_int16
from ...onair.tick import TickOutput
from .music import RATE, MusicBed
from .spec import Music

log = logging.getLogger(__name__)

AUDIBLE = 1e-4  # below this gain (-80 dB) the bed is off: nothing is mixed
MUTE_MS = 15.0  # an interrupt mutes the bed this fast (time constant), as a cut fades


class MusicMix:
    """Owned by the pacer thread (called once a tick); `play` is the event loop's."""

    def __init__(self, bed: MusicBed, music: Music, fps: int, sample_rate: int) -> None:
        if sample_rate != RATE:
            raise ValueError(f"the music bed plays at {RATE} Hz, not {sample_rate}")
        self.bed = bed
        self._spf = samples_per_frame(sample_rate, fps)
        self._tick_s = 1 / fps
        self._duck = 10 ** (-music.duck_db / 20)
        self._attack = math.exp(-self._tick_s / (music.attack_ms / 1000))
        self._release = math.exp(-self._tick_s / (music.release_ms / 1000))
        self._hold = math.ceil(music.hold_ms / 1000 * fps)
        self._mute = math.exp(-self._tick_s / (MUTE_MS / 1000))
        self.playing = music.playing  # read once a tick: a change takes effect on a tick
        self.gain = 1.0 if self.playing else 0.0
        self._spoke_at = -10**9  # the last tick speech was on air
        self.muted = False  # an interrupt on air
        self.failed: str | None = None  # why it stopped (a bug), if it did

    def play(self, on: bool) -> None:
        self.playing = on

    def __call__(self, n: int, out: TickOutput) -> None:
        if self.failed is not None:
            return
        try:
            self._mix(n, out)
        except Exception as exc:  # a bug here must not take the stream off air
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("the music bed failed; the programme airs without it")

    def _mix(self, n: int, out: TickOutput) -> None:
        seg = out.segment
        if seg is not None:
            self._spoke_at = n
        self.muted = seg is not None and seg.urgent
        if not self.playing or self.muted:
            target = 0.0
        elif n - self._spoke_at <= self._hold:
            target = self._duck
        else:
            target = 1.0
        start = self.gain
        step = (self._mute if self.muted else
                self._attack if target < start else self._release)
        end = target + (start - target) * step
        if abs(end - target) < AUDIBLE:
            end = target
        self.gain = end
        if start < AUDIBLE and end < AUDIBLE:
            return  # off: the bed waits where it is, and the tick is left alone
        ramp = np.linspace(start, end, self._spf, endpoint=False, dtype=np.float32)
        bed = self.bed.read(self._spf) * ramp
        mixed = out.audio.astype(np.float32) / 32768.0 + bed
        out.audio = to_int16(_soft_clip(mixed))
        out.quiet_after = 0


def _soft_clip(x: np.ndarray) -> np.ndarray:
    """Above 0.9 of full scale, bend smoothly toward 1 instead of clipping."""
    over = np.abs(x) > 0.9
    if over.any():
        x = x.copy()
        x[over] = np.sign(x[over]) * (0.9 + 0.1 * np.tanh((np.abs(x[over]) - 0.9) / 0.1))
    return x
