"""README evidence of the face alive, from the received stream that `python -m bench alive`
recorded: a strip of frames through the deepest blink of the idle stretch, the face thinking
(the frame of the thinking window where the eyes are furthest from their rest), frames of the
face speaking, and a clip from the idle before the `ask` through its thinking to its answer.

Written to docs/img/alive-blink.png, alive-thinking.png, alive-speaking.png, alive-clip.mp4.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from avatarcast.avatar.track import FaceTracker
from harness.speak import iter_frames

from .report import ROOT
from .session import FPS

Image = npt.NDArray[np.uint8]


def _frames(recording: Path, width: int, height: int, wanted: set[int]) -> dict[int, Image]:
    return {k: f.copy() for k, f in enumerate(iter_frames(recording, width, height, "rgb24", 3))
            if k in wanted}


def _crop_box(rgb: Image) -> tuple[int, int, int, int]:
    """Head and shoulders around the face, 4:3."""
    lm = FaceTracker().find(rgb)
    if lm is None:
        h, w = rgb.shape[:2]
        return 0, 0, w, h
    face = float(lm[152, 1] - lm[9, 1])
    cx, cy = float(lm[1, 0]), float(lm[1, 1])
    half_h = 1.1 * face
    half_w = half_h * 4 / 3
    h, w = rgb.shape[:2]
    x0, y0 = int(max(0, cx - half_w)), int(max(0, cy - half_h))
    return x0, y0, int(min(w, cx + half_w)), int(min(h, cy + half_h))


def _strip(frames: list[Image], box: tuple[int, int, int, int], height: int = 240) -> Image:
    x0, y0, x1, y1 = box
    tiles = []
    for f in frames:
        tile = f[y0:y1, x0:x1]
        scale = height / tile.shape[0]
        tiles.append(cv2.resize(tile, (round(tile.shape[1] * scale), height),
                                interpolation=cv2.INTER_AREA))
        tiles.append(np.full((height, 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def _save(path: Path, rgb: Image) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def make(recording: Path, width: int, height: int, series: dict[str, npt.NDArray[np.float64]],
         spans: dict[str, list[tuple[int, int]]], out_dir: Path | None = None) -> list[Path]:
    out_dir = out_dir or ROOT / "docs" / "img"
    openness = np.nanmean([series["mediapipe.open_l"], series["mediapipe.open_r"]], axis=0)
    (i0, i1), = spans["idle"]
    blink = i0 + int(np.nanargmin(openness[i0:i1]))
    blink_frames = [blink + d for d in (-6, -3, -2, -1, 0, 1, 2, 4, 7)]
    (t0, t1), = spans["thinking"]
    gx = series.get("mediapipe.gaze_x")
    gy = series.get("mediapipe.gaze_y")
    if gx is not None and gy is not None and t1 > t0:
        rest_x, rest_y = np.nanmedian(gx[i0:i1]), np.nanmedian(gy[i0:i1])
        away = np.hypot(gx[t0:t1] - rest_x, gy[t0:t1] - rest_y)
        # Not a blink (the iris is lost under the lid and its reading jumps).
        away[openness[t0:t1] < 0.8 * np.nanmedian(openness[i0:i1])] = np.nan
        thinking = t0 + int(np.nanargmax(away))
    else:
        thinking = t0 + 2 * FPS
    a0, a1 = spans["speech"][1] if len(spans["speech"]) > 1 else spans["speech"][0]
    speaking = [a0 + (a1 - a0) * k // 5 for k in range(1, 5)]
    wanted = {*blink_frames, thinking, *speaking, i0}
    got = _frames(recording, width, height, wanted)
    box = _crop_box(got[i0])
    paths = [
        _save(out_dir / "alive-blink.png", _strip([got[k] for k in blink_frames], box, 200)),
        _save(out_dir / "alive-thinking.png", _strip([got[i0], got[thinking]], box, 320)),
        _save(out_dir / "alive-speaking.png", _strip([got[k] for k in speaking], box, 240)),
    ]
    (ans0, _), = spans["answer"] or [(t1, t1)]
    start = max(0, t0 - 4 * FPS)
    clip = out_dir / "alive-clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(recording), "-ss", f"{start / FPS:.3f}",
         "-t", f"{(ans0 + 6 * FPS - start) / FPS:.3f}",
         "-vf", f"crop={box[2] - box[0]}:{box[3] - box[1]}:{box[0]}:{box[1]},scale=480:-2",
         "-c:v", "libx264", "-crf", "26", "-preset", "slow", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(clip)],
        check=True)
    return [*paths, clip]
