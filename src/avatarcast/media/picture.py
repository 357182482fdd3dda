"""A still picture at an output's size: a solid colour or an image scaled to cover the frame
(the scene's background, playout/scene/spec.py; avatar/background.py puts it behind the
person)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt


def picture(color: str | None, image: Path | None, width: int,
            height: int) -> npt.NDArray[np.uint8]:
    """A solid `color` (#rrggbb) or `image` scaled to cover width x height, RGB. OSError for
    an image that cannot be read."""
    if color is not None:
        rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
        return np.full((height, width, 3), rgb, np.uint8)
    assert image is not None
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"{image}: not an image OpenCV can read")
    h, w = bgr.shape[:2]
    scale = max(width / w, height / h)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    big = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
    x, y = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(cv2.cvtColor(big[y:y + height, x:x + width],
                                             cv2.COLOR_BGR2RGB))


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    """`image` drawn into `canvas` (in place) with its top-left corner at (x, y), which may
    lie outside it: what falls outside the canvas is cut."""
    h, w = image.shape[:2]
    sx, sy = max(0, -x), max(0, -y)
    dx, dy = max(0, x), max(0, y)
    cw, ch = min(w - sx, canvas.shape[1] - dx), min(h - sy, canvas.shape[0] - dy)
    if cw > 0 and ch > 0:
        canvas[dy:dy + ch, dx:dx + cw] = image[sy:sy + ch, sx:sx + cw]
