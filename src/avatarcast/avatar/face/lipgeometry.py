"""Where the lips, teeth and chin of one cycle frame are, in a face-aligned frame: u along the
mouth in half-widths (0 at the centre, +-1 at the corners), v down the face in pixels from the
line between the lips. Measured once per cycle frame from its landmarks and its pixels."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ...media.frames import Frame
from .. import mesh

Array = npt.NDArray[np.float32]


def smoothstep(t: npt.NDArray[np.floating[Any]] | float) -> Array:
    x = np.clip(t, 0.0, 1.0)
    return np.asarray(x * x * (3.0 - 2.0 * x), np.float32)


class LipGeometry:
    def __init__(self, landmarks: Array, frame: Frame, jaw_drop: float) -> None:
        h, w = frame.shape[0] * 2 // 3, frame.shape[1]
        lm = landmarks[:, :2].astype(np.float64)
        right, left = lm[mesh.MOUTH_RIGHT], lm[mesh.MOUTH_LEFT]
        self.a = max(float(np.linalg.norm(left - right)) / 2, 2.0)
        self.ex = (left - right) / (2 * self.a)
        self.ey = np.array([-self.ex[1], self.ex[0]])
        upper, lower = lm[list(mesh.INNER_UPPER)], lm[list(mesh.INNER_LOWER)]
        self.m = (upper[len(upper) // 2] + lower[len(lower) // 2]) / 2
        mid_u, mid_v = self._uv((upper + lower) / 2)
        order = np.argsort(mid_u)
        self.lip_u, self.lip_v = mid_u[order], mid_v[order]
        self.inner_upper = self._contour(upper)
        self.inner_lower = self._contour(lower)
        self.outer_upper = self._contour(lm[list(mesh.OUTER_UPPER)])
        self.outer_lower = self._contour(lm[list(mesh.OUTER_LOWER)])
        self.chin = max(float((lm[mesh.CHIN] - self.m) @ self.ey), self.a)
        j_max = jaw_drop * self.a * 1.25
        self.neck = max(1.6 * j_max, 0.9 * self.a)
        self.reach = max(0.6 * self.a, 1.0)
        luma = frame[:h].astype(np.float32)
        self.split_t, self.shows_teeth = self._teeth(luma)
        top = self.inner_upper
        self.split = (top[0], (top[1] + self.split_t * (self.at(self.inner_lower, top[0])
                                                         - top[1])).astype(np.float32))
        self.lip_chroma = self._lip_chroma(frame, w, h)
        self.roi = self._roi(w, h, j_max)
        # What the warp derives from this geometry alone, per grid step; kept when the
        # animator can afford it for every cycle frame (warp.py).
        self.keep_static = True
        self.static: dict[int, Any] = {}

    def _uv(self, points: npt.NDArray[np.float64]) -> tuple[Array, Array]:
        d = points - self.m
        return (d @ self.ex / self.a).astype(np.float32), (d @ self.ey).astype(np.float32)

    def _contour(self, points: npt.NDArray[np.float64]) -> tuple[Array, Array]:
        """(u, v from the line between the lips), sorted along the mouth."""
        u, v = self._uv(points)
        order = np.argsort(u)
        u, v = u[order], v[order]
        return u, (v - np.interp(u, self.lip_u, self.lip_v)).astype(np.float32)

    @staticmethod
    def at(contour: tuple[Array, Array], u: Array) -> Array:
        return np.interp(u, contour[0], contour[1]).astype(np.float32)

    def point(self, u: float, v: float) -> tuple[float, float]:
        """Image coordinates of (u, v)."""
        vv = v + float(np.interp(u, self.lip_u, self.lip_v))
        p = self.m + u * self.a * self.ex + vv * self.ey
        return float(p[0]), float(p[1])

    def _teeth(self, luma: npt.NDArray[np.float32]) -> tuple[float, bool]:
        """Where the upper teeth end between the lips (a share of the gap from the upper lip),
        and whether the portrait shows teeth at all."""
        us = np.linspace(-0.45, 0.45, 9, dtype=np.float32)
        c, e = self.at(self.inner_upper, us), self.at(self.inner_lower, us)
        if float(np.median(e - c)) < max(3.0, 0.08 * self.a):
            return 0.5, False
        ts = np.linspace(0.0, 1.0, 21, dtype=np.float32)
        profile = np.zeros(len(ts), np.float32)
        for u, top, bottom in zip(us, c, e, strict=True):
            for i, t in enumerate(ts):
                x, y = self.point(float(u), float(top + t * (bottom - top)))
                yi = int(np.clip(round(y), 0, luma.shape[0] - 1))
                xi = int(np.clip(round(x), 0, luma.shape[1] - 1))
                profile[i] += luma[yi, xi] / len(us)
        lips = self._mean_on(luma, self.outer_upper, self.inner_upper)
        # Teeth show when a good part of the gap (a quarter) is brighter than the lips. Not
        # the mean over the gap: how much of it the dark lines above and below the teeth and
        # the inner edges of the lips take depends on the landmarks' scale (the portrait
        # framed on its face, its mouth 144 px wide at 720p, measured 195 against 195).
        bright = float(np.percentile(profile[2:-2], 75)) > lips + 20
        steps = np.diff(profile)
        window = (ts[:-1] >= 0.4) & (ts[:-1] <= 0.9)
        k = int(np.flatnonzero(window)[np.argmin(steps[window])])
        return float(ts[k] + 0.025), bright

    def _mean_on(self, plane: npt.NDArray[np.float32], outer: tuple[Array, Array],
                 inner: tuple[Array, Array], scale: float = 1.0) -> float:
        """Mean of `plane` halfway between two lip contours near the middle of the mouth."""
        vals = []
        for u in np.linspace(-0.4, 0.4, 9, dtype=np.float32):
            v = 0.5 * (float(self.at(outer, u)) + float(self.at(inner, u)))
            x, y = self.point(float(u), v)
            yi = int(np.clip(round(y * scale), 0, plane.shape[0] - 1))
            xi = int(np.clip(round(x * scale), 0, plane.shape[1] - 1))
            vals.append(float(plane[yi, xi]))
        return float(np.mean(vals))

    def _lip_chroma(self, frame: Frame, w: int, h: int) -> tuple[float, float]:
        quarter = h * w // 4
        planes = frame.reshape(-1)[h * w :]
        out = []
        for k in range(2):
            plane = planes[k * quarter : (k + 1) * quarter].reshape(h // 2, w // 2)
            out.append(self._mean_on(plane.astype(np.float32), self.outer_lower,
                                     self.inner_lower, 0.5))
        return out[0], out[1]

    def _roi(self, width: int, height: int, j_max: float) -> tuple[int, int, int, int]:
        # The upper lip stretches over `reach` above it; the sideways moves end 0.8 a above
        # the line between the lips.
        top = min(float(self.outer_upper[1].min()) - self.reach, -0.8 * self.a) - 0.3 * self.a
        bottom = self.chin + j_max + self.neck + 0.3 * self.a
        side = 3.0 * self.a
        corners = [self.m + u * self.ex + v * self.ey for u in (-side, side) for v in (top, bottom)]
        xs = [p[0] for p in corners]
        ys = [p[1] for p in corners]
        x0 = max(0, int(np.floor(min(xs))) // 2 * 2)
        y0 = max(0, int(np.floor(min(ys))) // 2 * 2)
        x1 = min(width, (int(np.ceil(max(xs))) + 2) // 2 * 2)
        y1 = min(height, (int(np.ceil(max(ys))) + 2) // 2 * 2)
        return x0, y0, x1, y1
