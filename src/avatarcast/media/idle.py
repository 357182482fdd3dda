"""The idle source: a still image or a looping video, decoded once into memory, played as a
ping-pong cycle (0..N-1, N-1..0) so that its end flows back into its start."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..infra.errors import UserError
from .frames import Frame, frame_bytes

log = logging.getLogger(__name__)

PAD_RGB = (16, 20, 24)  # letterbox bars around a source of another aspect ratio
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class IdleSourceError(UserError):
    pass


@dataclass(frozen=True)
class Behind:
    """A moving background, put behind the person on each tick rather than into the frames:
    the person's mask on each frame of the cycle (frames.mask_frame) and the video playing
    behind (media/loop.py, or anything with its `at`)."""

    masks: list[Frame]
    video: Playing


class Playing(Protocol):
    """A video that plays on the clock: its frame for tick n (media/loop.py)."""

    closed: bool  # stopped for good (replaced and unused): its last frame holds

    def at(self, n: int) -> Frame: ...


class IdleCycle:
    def __init__(self, frames: list[Frame], rig: object | None = None,
                 behind: Behind | None = None) -> None:
        if not frames:
            raise IdleSourceError("idle source has no frames")
        if behind is not None and len(behind.masks) != len(frames):
            raise ValueError(f"{len(behind.masks)} masks for {len(frames)} frames")
        self.frames = frames
        # The face rig that brings these frames to life on air (avatar/alive/rig.py), or
        # None: they air as they are.
        self.rig = rig
        self.behind = behind

    @property
    def length(self) -> int:
        return len(self.frames)

    @property
    def period(self) -> int:
        n = len(self.frames)
        return 1 if n == 1 else 2 * n - 2

    def index(self, n: int) -> int:
        """Cycle index shown at output frame n."""
        p = self.period
        i = n % p
        return i if i < len(self.frames) else p - i

    def frame(self, n: int) -> Frame:
        return self.frames[self.index(n)]


def load_idle(
    path: Path, width: int, height: int, fps: int, max_frames: int, ffmpeg: str = "ffmpeg"
) -> IdleCycle:
    """Decode an image or video with FFmpeg, scaled and letterboxed to width x height."""
    if not path.is_file():
        raise IdleSourceError(f"idle source not found: {path}")
    still = path.suffix.lower() in IMAGE_SUFFIXES
    vf = (
        f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=0x{bytes(PAD_RGB).hex()},setsar=1"
    )
    if not still:
        vf = f"fps={fps}," + vf
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-vf", vf]
    cmd += ["-frames:v", "1" if still else str(max_frames)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise IdleSourceError(f"cannot decode idle source {path}: {msg[-1] if msg else '?'}")
    size = frame_bytes(width, height)
    count = len(proc.stdout) // size
    if count == 0:
        raise IdleSourceError(f"idle source {path} decoded to no frames")
    buf = np.frombuffer(proc.stdout, dtype=np.uint8, count=count * size)
    frames = [buf[i * size : (i + 1) * size].reshape(height * 3 // 2, width) for i in range(count)]
    log.info(
        "idle source %s: %d frame(s) at %dx%d, cycle period %d",
        path, count, width, height, IdleCycle(frames).period,
    )
    return IdleCycle(frames)
