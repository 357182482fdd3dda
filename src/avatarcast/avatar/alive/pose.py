"""The head and the body moved on yuv420p: the head turned about the top of the neck and
shifted, the shoulders and chest raised by the breath, everything else still.

The displacement is worked out on the rig's coarse grid (the head's weight times its rigid
move, plus the body's weight times the breath), upsampled over the region that moves, and
each plane is remapped once. A displacement this small and this smooth is its own inverse to
well under a tenth of a pixel, so each output pixel is taken from where it came from."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from ...media.frames import Frame
from .rig import GRID, Pose

Array = npt.NDArray[np.float32]


def displacement(pose: Pose, dx: float, dy: float, roll_deg: float,
                 rise: float) -> tuple[Array, Array]:
    """Where each coarse node moves to, less where it is (pixels): the head's rigid move and
    the body's rise (`rise` pixels up), each by its weight; the head rides on the body."""
    px, py = pose.pivot
    t = math.radians(roll_deg)
    c, s = math.cos(t) - 1.0, math.sin(t)
    rx, ry = pose.grid_x - px, pose.grid_y - py
    head_x = c * rx - s * ry + dx
    head_y = s * rx + c * ry + dy
    lift = np.maximum(pose.body, 0.6 * pose.head) * np.float32(-rise)
    return (pose.head * head_x).astype(np.float32), (pose.head * head_y + lift).astype(np.float32)


def move_body(out: Frame, src: Frame, pose: Pose, dx: float, dy: float, roll_deg: float,
              rise: float) -> None:
    """Draw `src`'s region that moves into `out` (same shape, yuv420p), moved."""
    x0, y0, x1, y1 = pose.box
    w, h = x1 - x0, y1 - y0
    if w < 4 or h < 4:
        return
    ddx, ddy = displacement(pose, dx, dy, roll_deg, rise)
    rows, fw = src.shape
    fh = rows * 2 // 3
    gh, gw = ddx.shape
    # Where each output pixel comes from, upsampled from the nodes (a cell beyond the region
    # on each side: the region's own pixels are all between nodes).
    size = (gw * GRID, gh * GRID)
    map_x = cv2.resize(pose.grid_x - ddx, size)[GRID:GRID + h, GRID:GRID + w]
    map_y = cv2.resize(pose.grid_y - ddy, size)[GRID:GRID + h, GRID:GRID + w]
    out[y0:y1, x0:x1] = cv2.remap(src[:fh], map_x, map_y, cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    # A chroma sample sits between four luma pixels and comes from half as far as they do:
    # the map at its top-left luma pixel, halved.
    cmx = map_x[::2, ::2] * np.float32(0.5)
    cmy = map_y[::2, ::2] * np.float32(0.5)
    quarter = (fh // 2) * (fw // 2)
    planes = out.reshape(-1)[fh * fw:]
    sources = src.reshape(-1)[fh * fw:]
    for k in (0, 1):
        plane = sources[k * quarter:(k + 1) * quarter].reshape(fh // 2, fw // 2)
        dst = planes[k * quarter:(k + 1) * quarter].reshape(fh // 2, fw // 2)
        dst[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = cv2.remap(
            plane, cmx, cmy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
