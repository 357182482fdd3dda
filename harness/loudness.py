"""Loudness as an outside meter reads it: FFmpeg's ebur128 filter (EBU R128), to check the
daemon's own meter and what a client received."""

from __future__ import annotations

import re
import subprocess

import numpy as np


def ffmpeg_r128(x: np.ndarray, rate: int = 48_000) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of mono float samples, by FFmpeg's ebur128 filter."""
    p = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-f", "f32le", "-ar", str(rate), "-ac", "1",
         "-i", "-", "-af", "ebur128=peak=true", "-f", "null", "-"],
        input=x.astype(np.float32).tobytes(), capture_output=True, check=True)
    said = p.stderr.decode()
    return (float(re.findall(r"I:\s+(-?[\d.]+) LUFS", said)[-1]),
            float(re.findall(r"Peak:\s+(-?[\d.]+) dBFS", said)[-1]))
