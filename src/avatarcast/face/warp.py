"""A landmark-driven warp of the lower face, done directly on yuv420p frames.

Geometry lives in a face-aligned frame per cycle frame: origin at the centre of the lips, u
along the mouth (in mouth half-widths), v down the face (pixels) measured from the line where
the lips meet. The warp is defined backwards, from each output pixel to where it comes from:

* below the lower lip the jaw, chin and lower lip drop by J (full inside the mouth, ramping
  in from the lip line beyond the corners and tapering out towards the ears), then fade out
  below the chin so the neck gives way; above the upper lip it lifts slightly;
* between the two lip lines is the mouth interior, painted dark with the upper teeth showing;
* a small sideways stretch follows the mouth's width.

Every ramp is longer than 1.5x the displacement it carries, so the map never folds; every
displacement falls to zero inside the region worked on, so there is no seam at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ..avatar import mesh
from ..onair.frames import Frame

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class WarpTuning:
    jaw_drop: float = 0.45  # jaw drop at full opening, in mouth half-widths
    lip_lift: float = 0.2  # upper-lip lift as a share of the jaw drop
    width_gain: float = 0.12  # how far the corners move at full width
    interior_y: float = 34.0
    teeth_y: float = 200.0


def _smoothstep(t: Array) -> Array:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class FaceGeometry:
    """The face-aligned frame of one cycle frame, from its landmarks (output pixels)."""

    def __init__(self, landmarks: Array, width: int, height: int, tuning: WarpTuning) -> None:
        lm = landmarks[:, :2].astype(np.float64)
        right, left = lm[mesh.MOUTH_RIGHT], lm[mesh.MOUTH_LEFT]
        self.a = max(float(np.linalg.norm(left - right)) / 2, 2.0)
        ex = (left - right) / (2 * self.a)
        self.ex = ex
        self.ey = np.array([-ex[1], ex[0]])
        upper, lower = lm[list(mesh.INNER_UPPER)], lm[list(mesh.INNER_LOWER)]
        self.m = (upper[len(upper) // 2] + lower[len(lower) // 2]) / 2
        mid = (upper + lower) / 2 - self.m
        lip_u, lip_v = mid @ ex / self.a, mid @ self.ey
        order = np.argsort(lip_u)
        self.lip_u, self.lip_v = lip_u[order], lip_v[order]
        self.chin = max(float((lm[mesh.CHIN] - self.m) @ self.ey), self.a)
        self.upper_lip = max(float((self.m - lm[mesh.UPPER_LIP_TOP]) @ self.ey), 1.0)
        t = tuning
        j_max = t.jaw_drop * self.a
        self.ramp = max(1.6 * j_max, 0.9 * self.a)
        self.neck = max(1.6 * j_max, 0.9 * self.a)
        self.lift_reach = max(1.6 * t.lip_lift * j_max, 1.5 * self.upper_lip, 0.5 * self.a)
        self.roi = self._roi(width, height, j_max)

    def _roi(self, width: int, height: int, j_max: float) -> tuple[int, int, int, int]:
        top = -(self.lift_reach + self.upper_lip + 0.3 * self.a)
        bottom = self.chin + j_max + self.neck + 0.3 * self.a
        side = 3.0 * self.a
        corners = [self.m + u * self.ex + v * self.ey for u in (-side, side) for v in (top, bottom)]
        xs = [c[0] for c in corners]
        ys = [c[1] for c in corners]
        x0 = max(0, int(np.floor(min(xs))) // 2 * 2)
        y0 = max(0, int(np.floor(min(ys))) // 2 * 2)
        x1 = min(width, (int(np.ceil(max(xs))) + 2) // 2 * 2)
        y1 = min(height, (int(np.ceil(max(ys))) + 2) // 2 * 2)
        return x0, y0, x1, y1


@dataclass
class _Field:
    map_x: Array
    map_y: Array
    alpha: Array  # mouth interior coverage
    teeth: Array  # how much of the interior is teeth, 0..1
    shade: Array


def _field(
    g: FaceGeometry, x: Array, y: Array, opening: float, width: float, t: WarpTuning,
    pixel: float,
) -> _Field:
    dx, dy = x - g.m[0], y - g.m[1]
    u = ((dx * g.ex[0] + dy * g.ex[1]) / g.a).astype(np.float32)
    v = (dx * g.ey[0] + dy * g.ey[1] - np.interp(u, g.lip_u, g.lip_v)).astype(np.float32)
    jaw = opening * t.jaw_drop * g.a
    lift = t.lip_lift * jaw
    cw = 1.0 + t.width_gain * width * opening
    gap = np.clip(1.0 - (u / cw) ** 2, 0.0, 1.0) ** 0.7
    lo, up = jaw * gap, -lift * gap
    side = 1.0 - _smoothstep((np.abs(u) - 1.3) / 1.5)
    fade = 1.0 - _smoothstep((v - (g.chin + jaw)) / g.neck)
    drop = jaw * (gap + (1.0 - gap) * _smoothstep((v - lo) / g.ramp)) * side * fade
    raise_ = lift * gap * (1.0 - _smoothstep((up - v) / g.lift_reach))
    vs = np.where(v >= lo, v - drop, np.where(v <= up, v + raise_, 0.0))
    stretch = (cw - 1.0) * np.exp(-((v / (1.2 * g.a)) ** 2)) * np.exp(-((u / 1.8) ** 4))
    us = u * (1.0 - stretch)
    du = us * g.a
    dv = vs + np.interp(us, g.lip_u, g.lip_v)
    map_x = (g.m[0] + du * g.ex[0] + dv * g.ey[0]).astype(np.float32)
    map_y = (g.m[1] + du * g.ex[1] + dv * g.ey[1]).astype(np.float32)
    inside = np.minimum(v - up, lo - v)
    alpha = np.clip(inside / pixel + 0.5, 0.0, 1.0) * (gap > 0)
    height = lo - up
    soft = 1.5 * pixel
    upper_teeth = np.clip((np.minimum(0.4 * height, 0.16 * g.a) - (v - up)) / soft, 0, 1)
    upper_teeth *= np.clip(((0.75 * cw - np.abs(u)) * g.a) / soft, 0, 1)
    lower_teeth = np.clip((np.minimum(0.12 * height, 0.05 * g.a) - (lo - v)) / soft, 0, 1)
    lower_teeth *= np.clip(((0.55 * cw - np.abs(u)) * g.a) / soft, 0, 1)
    teeth = np.maximum(upper_teeth, lower_teeth).astype(np.float32)
    # Darker towards the corners and the back of the mouth.
    shade = (0.65 + 0.35 * gap).astype(np.float32)
    return _Field(map_x, map_y, alpha.astype(np.float32), teeth, shade)


def _grid(x0: int, y0: int, x1: int, y1: int, step: int) -> tuple[Array, Array]:
    # Pixel centres in luma coordinates; a chroma sample covers 2x2 luma pixels.
    off = 0.5 * (step - 1)
    xs = np.arange(x0, x1, step, dtype=np.float32) + off
    ys = np.arange(y0, y1, step, dtype=np.float32) + off
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy


def warp(frame: Frame, g: FaceGeometry, opening: float, width: float, t: WarpTuning) -> Frame:
    """The frame with the mouth opened by `opening` (0..1) and spread by `width` (-1..1).
    Returns the frame itself, unchanged and shared, when the mouth is closed."""
    if opening < 1e-3:
        return frame
    h = frame.shape[0] * 2 // 3
    w = frame.shape[1]
    out = frame.copy()
    x0, y0, x1, y1 = g.roi
    if x1 - x0 < 4 or y1 - y0 < 4:
        return frame
    gx, gy = _grid(x0, y0, x1, y1, 1)
    f = _field(g, gx, gy, opening, width, t, pixel=1.0)
    luma = cv2.remap(frame[:h], f.map_x, f.map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    paint = (t.interior_y + (t.teeth_y - t.interior_y) * f.teeth) * f.shade
    out[y0:y1, x0:x1] = np.round(luma + (paint - luma) * f.alpha).astype(np.uint8)

    cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, x1 // 2, y1 // 2
    gx, gy = _grid(x0, y0, x1, y1, 2)
    f = _field(g, gx, gy, opening, width, t, pixel=2.0)
    mx, my = (f.map_x - 0.5) / 2, (f.map_y - 0.5) / 2
    quarter = h * w // 4
    planes = out.reshape(-1)[h * w :]
    src = frame.reshape(-1)[h * w :]
    for k, (teeth_c, mouth_c) in enumerate(((127.0, 120.0), (130.0, 146.0))):
        plane = src[k * quarter : (k + 1) * quarter].reshape(h // 2, w // 2)
        chroma = cv2.remap(plane, mx, my, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        paint = mouth_c + (teeth_c - mouth_c) * f.teeth
        dst = planes[k * quarter : (k + 1) * quarter].reshape(h // 2, w // 2)
        dst[cy0:cy1, cx0:cx1] = np.round(chroma + (paint - chroma) * f.alpha).astype(np.uint8)
    return out
