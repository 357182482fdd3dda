"""A picture laid over the program: yuv420p planes and an alpha, at full and at half
resolution, made once from RGBA (text, a logo) and blended into each frame only over its own
rectangle, in integer arithmetic. Positions and sizes are even, as yuv420p's chroma needs."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ...media.frames import Frame, chroma_planes

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Layer:
    y: U8  # (h, w) luma
    u: U8  # (h/2, w/2)
    v: U8
    a: npt.NDArray[np.uint16]  # (h, w) alpha 0..255
    a2: npt.NDArray[np.uint16]  # (h/2, w/2)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.y.shape[1], self.y.shape[0]

    @classmethod
    def from_rgba(cls, rgba: U8) -> Layer:
        h, w = rgba.shape[:2]
        eh, ew = h + h % 2, w + w % 2
        if (eh, ew) != (h, w):  # padded to even with transparent pixels
            padded = np.zeros((eh, ew, 4), np.uint8)
            padded[:h, :w] = rgba
            rgba = padded
        yuv = np.asarray(cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]),
                                      cv2.COLOR_RGB2YUV_I420), np.uint8)
        q = (eh // 2) * (ew // 2)
        chroma = yuv[eh:].reshape(-1)
        alpha = rgba[..., 3]
        half = cv2.resize(alpha, (ew // 2, eh // 2), interpolation=cv2.INTER_AREA)
        return cls(yuv[:eh].copy(), chroma[:q].reshape(eh // 2, ew // 2).copy(),
                   chroma[q:2 * q].reshape(eh // 2, ew // 2).copy(),
                   alpha.astype(np.uint16), np.asarray(half, np.uint16))

    def crop(self, x0: int, width: int) -> Layer:
        """Columns x0..x0+width (both even) of it."""
        return Layer(self.y[:, x0:x0 + width], self.u[:, x0 // 2:(x0 + width) // 2],
                     self.v[:, x0 // 2:(x0 + width) // 2], self.a[:, x0:x0 + width],
                     self.a2[:, x0 // 2:(x0 + width) // 2])


def lay(frame: Frame, layer: Layer, x: int, y: int) -> None:
    """`layer` over `frame` (written in place) with its top-left corner at (x, y), rounded
    down to even; what falls outside the frame is left out."""
    rows, width = frame.shape
    height = rows * 2 // 3
    x, y = x // 2 * 2, y // 2 * 2
    lw, lh = layer.size
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + lw), min(height, y + lh)
    if x0 >= x1 or y0 >= y1:
        return
    sx, sy = x0 - x, y0 - y
    _mix(frame[y0:y1, x0:x1], layer.y[sy:sy + y1 - y0, sx:sx + x1 - x0],
         layer.a[sy:sy + y1 - y0, sx:sx + x1 - x0])
    u, v = chroma_planes(frame)
    cy, cx, ch, cw = y0 // 2, x0 // 2, (y1 - y0) // 2, (x1 - x0) // 2
    a2 = layer.a2[sy // 2:sy // 2 + ch, sx // 2:sx // 2 + cw]
    _mix(u[cy:cy + ch, cx:cx + cw], layer.u[sy // 2:sy // 2 + ch, sx // 2:sx // 2 + cw], a2)
    _mix(v[cy:cy + ch, cx:cx + cw], layer.v[sy // 2:sy // 2 + ch, sx // 2:sx // 2 + cw], a2)


def _mix(dst: U8, src: U8, alpha: npt.NDArray[np.uint16]) -> None:
    """dst = src * a + dst * (1 - a), a in 0..255, rounded."""
    d = dst.astype(np.uint16)
    dst[...] = ((src * alpha + d * (255 - alpha) + 127) // 255).astype(np.uint8)
