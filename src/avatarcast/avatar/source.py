"""Decoding an avatar source, image or video, into RGB frames at the cycle's frame rate."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..infra.errors import UserError
from ..media.idle import IMAGE_SUFFIXES

Image = npt.NDArray[np.uint8]


class SourceError(UserError):
    """The source cannot be read or decoded."""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ffprobe_beside(ffmpeg: str) -> str:
    """The ffprobe that comes with this ffmpeg (same folder, same naming)."""
    head, _, tail = ffmpeg.rpartition("/")
    probe = tail.replace("ffmpeg", "ffprobe") if "ffmpeg" in tail else "ffprobe"
    return f"{head}/{probe}" if head else probe


def probe_size(path: Path, ffmpeg: str = "ffmpeg") -> tuple[int, int, int]:
    """Width, height and (for a video, estimated) frame count of the first video stream."""
    cmd = [
        ffprobe_beside(ffmpeg), "-v", "error", "-select_streams", "v:0", "-count_packets",
        "-show_entries", "stream=width,height,nb_read_packets", "-of", "json", str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    try:
        stream = json.loads(proc.stdout)["streams"][0]
        return int(stream["width"]), int(stream["height"]), int(stream.get("nb_read_packets", 1))
    except (ValueError, KeyError, IndexError):
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        reason = err[-1] if err else "no video stream"
        raise SourceError(f"{path}: not an image or video ({reason})") from None


def fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scale down to max_side on the long edge, even dimensions (yuv420p needs them)."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def decode(
    path: Path, size: tuple[int, int], fps: int, max_frames: int, ffmpeg: str = "ffmpeg",
    crop: tuple[int, int, int, int] | None = None,
) -> Iterator[Image]:
    """RGB frames of the source at size, resampled to fps; one frame for an image. With a
    crop (x, y, w, h in the source's pixels), frames of that part of it."""
    w, h = size
    vf = f"scale={w}:{h}:flags=area,setsar=1"
    if crop is not None:
        cx, cy, cw, ch = crop
        vf = f"crop={cw}:{ch}:{cx}:{cy}:exact=1," + vf
    if not is_image(path):
        vf = f"fps={fps}," + vf
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path), "-vf", vf,
           "-frames:v", "1" if is_image(path) else str(max_frames),
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    size_b = w * h * 3
    count = 0
    try:
        while True:
            buf = proc.stdout.read(size_b)
            if len(buf) < size_b:
                break
            count += 1
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0 or count == 0:
        raise SourceError(f"cannot decode {path}: {err.splitlines()[-1] if err else 'no frames'}")
