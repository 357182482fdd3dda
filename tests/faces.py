"""Test material for the face path: the bundled portrait, and a short video made from it in
which a few frames show no face."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np

from avatarcast.settings import DEFAULT_IDLE_SOURCE

PORTRAIT = DEFAULT_IDLE_SOURCE
FACELESS = (8, 9, 10)  # frames of the test video with a plain grey picture


def make_video(path: Path, frames: int = 16, size: int = 256, fps: int = 30) -> Path:
    """The portrait drifting sideways, with FACELESS frames blanked out."""
    src = cv2.cvtColor(cv2.imread(str(PORTRAIT)), cv2.COLOR_BGR2RGB)
    raw = bytearray()
    for i in range(frames):
        if i in FACELESS:
            rgb = np.full((size, size, 3), 128, np.uint8)
        else:
            x = 20 + 2 * i
            rgb = cv2.resize(src[20 : 20 + 440, x : x + 440], (size, size))
        raw += rgb.tobytes()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
         f"{size}x{size}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-crf", "12",
         "-pix_fmt", "yuv420p", str(path)],
        input=bytes(raw), check=True,
    )
    return path


def voiced(seconds: float, rate: int = 16000, syllables_hz: float = 4.0) -> np.ndarray:
    """A vowel-like int16 signal (harmonics of 140 Hz) whose loudness rises and falls
    `syllables_hz` times a second, with silence around it."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    envelope = np.clip(np.sin(np.pi * syllables_hz * t), 0, None) ** 2
    x = 0.25 * tone * envelope / np.abs(tone).max()
    pad = np.zeros(int(0.3 * rate))
    return np.round(np.concatenate([pad, x, pad]) * 32767).astype(np.int16)
