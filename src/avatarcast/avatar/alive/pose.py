"""The head and the body moved on yuv420p: the head turned about the top of the neck and
shifted, the shoulders and chest raised by the breath, everything else still.

Where each pixel comes from is worked out on the rig's coarse grid (the head's weight times
its rigid move, plus the lift's weight times the breath), upsampled over the region that
moves, and each plane is remapped once, straight into the output frame. A displacement this
small and this smooth is its own inverse to well under a tenth of a pixel, so each output
pixel is taken from where it came from.

The maps are written into buffers kept from frame to frame (infra/scratch.py)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from ...infra.scratch import Scratch
from ...media.frames import Frame, chroma_planes, remap_xy
from .rig import GRID, Pose

Array = npt.NDArray[np.float32]


def source_of(pose: Pose, dx: float, dy: float, roll_deg: float,
              rise: float) -> Array:
    """Where each coarse node's pixel comes from, (gh, gw, 2) in pixels: the node less the
    head's rigid move and the body's rise (`rise` pixels up), each by its weight; the head
    rides on the body."""
    px, py = pose.pivot
    t = math.radians(roll_deg)
    c, s = math.cos(t) - 1.0, math.sin(t)
    rx, ry = pose.grid_x - px, pose.grid_y - py
    head_x = pose.head * (c * rx - s * ry + dx)
    head_y = pose.head * (s * rx + c * ry + dy) - pose.lift * np.float32(rise)
    return np.dstack([pose.grid_x - head_x, pose.grid_y - head_y]).astype(np.float32)


def move_body(out: Frame, src: Frame, pose: Pose, dx: float, dy: float, roll_deg: float,
              rise: float, scratch: Scratch | None = None,
              mask: tuple[Frame, Frame] | None = None) -> None:
    """Draw `src`'s region that moves into `out` (same shape, yuv420p, not the same array),
    moved; with `mask` (the person's mask as a frame, frames.mask_frame, and the frame to draw
    it into), the mask moved alike. Its edge is a feather several pixels wide, so it is moved
    at half size (its chroma plane, by chroma's map) and brought up for luma: a third of the
    cost of moving it whole."""
    x0, y0, x1, y1 = pose.box
    w, h = x1 - x0, y1 - y0
    if w < 4 or h < 4:
        return
    scratch = scratch or Scratch()
    fh = src.shape[0] * 2 // 3
    nodes = source_of(pose, dx, dy, roll_deg, rise)
    gh, gw = nodes.shape[:2]
    # Upsampled from the nodes (a cell beyond the region on each side, so that every pixel of
    # the region lies between nodes and is interpolated exactly): luma at full size; chroma at
    # half size, where a sample's centre lies between four luma pixels (upsampling is linear,
    # so the nodes are scaled to chroma's pixels first).
    luma = np.asarray(cv2.resize(nodes, (gw * GRID, gh * GRID),
                                 dst=scratch.get("luma", (gh * GRID, gw * GRID, 2))), np.float32)
    half = GRID // 2
    nodes *= np.float32(0.5)
    nodes -= np.float32(0.25)
    chroma = np.asarray(cv2.resize(nodes, (gw * half, gh * half),
                                   dst=scratch.get("chroma", (gh * half, gw * half, 2))),
                        np.float32)
    luma_map = luma[GRID:GRID + h, GRID:GRID + w]
    chroma_map = chroma[half:half + h // 2, half:half + w // 2]
    remap_xy(src[:fh], luma_map, out[y0:y1, x0:x1])
    for plane, dst in zip(chroma_planes(src), chroma_planes(out), strict=True):
        remap_xy(plane, chroma_map, dst[y0 // 2:y1 // 2, x0 // 2:x1 // 2])
    if mask is not None:
        given, moved = mask
        (u, v), (half_in, _) = chroma_planes(moved), chroma_planes(given)
        region = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
        remap_xy(half_in, chroma_map, u[region])
        v[region] = u[region]
        up = scratch.get("mask up", (h, w), np.uint8)
        cv2.resize(u[region], (w, h), dst=up, interpolation=cv2.INTER_LINEAR)
        moved[y0:y1, x0:x1] = up

