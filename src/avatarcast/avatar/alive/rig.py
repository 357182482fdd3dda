"""The face rig: what the motion needs to know of one avatar picture, from its landmarks (in
output pixels): the face's size, the pivot the head turns about, where the head and the body
are (soft weights on a coarse grid), and each eye with its lids and brow.

Built once per picture (a still has one; a video's frames get theirs as they air, the last
few kept)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .. import mesh

Array = npt.NDArray[np.float32]

GRID = 8  # the head and body weights are computed every GRID pixels, then upsampled


def smoothstep(t: npt.NDArray[np.floating] | float) -> Array:
    x = np.clip(t, 0.0, 1.0)
    return np.asarray(x * x * (3.0 - 2.0 * x), np.float32)


@dataclass(frozen=True)
class Eye:
    """One eye: its lids (outer corner to inner), the brow's lower edge above it, and the
    region its warp works in (even bounds, output pixels)."""

    upper: Array  # (9, 2)
    lower: Array  # (9, 2)
    brow: Array  # (5, 2)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.upper[-1] - self.upper[0]))

    @property
    def opening(self) -> float:
        """The opening at its widest, pixels."""
        xs = np.linspace(self.upper[:, 0].min(), self.upper[:, 0].max(), 9)
        return float((_along(self.lower, xs) - _along(self.upper, xs)).max())


def _along(line: Array, xs: Array) -> Array:
    """The polyline's y at each x (held beyond its ends)."""
    order = np.argsort(line[:, 0])
    return np.asarray(np.interp(xs, line[order, 0], line[order, 1]), np.float32)


@dataclass(frozen=True)
class Pose:
    """One picture's head and body: the face height, the pivot, and the weights of the head
    (1 on the head, fading out around it) and of the body (the shoulders and the chest) on
    the coarse grid over `box` (the region anything moves in)."""

    face: float  # brow to chin, pixels
    pivot: tuple[float, float]
    box: tuple[int, int, int, int]
    grid_x: Array  # (gh, gw): the coarse nodes' positions
    grid_y: Array
    head: Array  # (gh, gw) weights
    body: Array
    lift: Array  # how much of the breath's rise reaches each node (the head rides on it)


@dataclass(frozen=True)
class FrameRig:
    pose: Pose
    eyes: tuple[Eye, Eye]


def frame_rig(lm: Array, width: int, height: int) -> FrameRig:
    xy = lm[:, :2].astype(np.float32)
    brow = (xy[list(mesh.RIGHT_BROW_LOWER)].mean(0) + xy[list(mesh.LEFT_BROW_LOWER)].mean(0)) / 2
    chin = xy[mesh.CHIN]
    face = max(float(np.linalg.norm(chin - brow)), 8.0)
    return FrameRig(_pose(xy, face, chin, width, height),
                    (_eye(xy, mesh.RIGHT_UPPER_LID, mesh.RIGHT_LOWER_LID, mesh.RIGHT_BROW_LOWER,
                          width, height),
                     _eye(xy, mesh.LEFT_UPPER_LID, mesh.LEFT_LOWER_LID, mesh.LEFT_BROW_LOWER,
                          width, height)))


def _even_box(x0: float, y0: float, x1: float, y1: float, width: int,
              height: int) -> tuple[int, int, int, int]:
    return (max(0, int(np.floor(x0)) // 2 * 2), max(0, int(np.floor(y0)) // 2 * 2),
            min(width, (int(np.ceil(x1)) + 1) // 2 * 2),
            min(height, (int(np.ceil(y1)) + 1) // 2 * 2))


def _eye(xy: Array, upper: tuple[int, ...], lower: tuple[int, ...], brow: tuple[int, ...],
         width: int, height: int) -> Eye:
    up, lo, br = xy[list(upper)], xy[list(lower)], xy[list(brow)]
    w = float(np.linalg.norm(up[-1] - up[0]))
    gap = float(np.median(_along(up, br[:, 0]) - br[:, 1]))  # brow to lid
    x0 = min(up[:, 0].min(), br[:, 0].min()) - 0.35 * w
    x1 = max(up[:, 0].max(), br[:, 0].max()) + 0.35 * w
    y0 = br[:, 1].min() - 1.2 * max(gap, 0.15 * w)
    y1 = lo[:, 1].max() + 0.45 * w
    return Eye(up, lo, br, _even_box(x0, y0, x1, y1, width, height))


def _pose(xy: Array, face: float, chin: npt.NDArray[np.float32], width: int,
          height: int) -> Pose:
    oval = xy[list(mesh.FACE_OVAL)]
    ox0, oy0 = oval.min(0)
    ox1, oy1 = oval.max(0)
    cx = float(ox0 + ox1) / 2
    half_w = float(ox1 - ox0) / 2
    # The head: the face's oval grown to take in the hair and the ears; the neck below it.
    a, b = 1.3 * half_w, 0.62 * float(oy1 - oy0) + 0.2 * face
    cy = float(oy1) - 0.58 * float(oy1 - oy0)
    margin = 0.5
    # The body: the shoulders about half a face below the chin, nearly as wide as three faces.
    shoulders = float(chin[1]) + 0.55 * face
    body_half = 2.4 * half_w
    x0 = min(cx - a * (1 + margin), cx - body_half * 1.3)
    x1 = max(cx + a * (1 + margin), cx + body_half * 1.3)
    y0 = cy - b * (1 + margin)
    box = _even_box(x0, y0, x1, height, width, height)
    bx0, by0, bx1, by1 = box
    # Nodes at the centres of GRID-pixel cells, one cell beyond the region on every side,
    # so that upsampling (pose.py) is exact linear interpolation all over the region.
    gx = np.arange(bx0 - GRID + (GRID - 1) / 2, bx1 + 2 * GRID, GRID, dtype=np.float32)
    gy = np.arange(by0 - GRID + (GRID - 1) / 2, by1 + 2 * GRID, GRID, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(gx, gy)
    r = np.sqrt(((grid_x - cx) / a) ** 2 + ((grid_y - cy) / b) ** 2)
    head = 1.0 - smoothstep((r - 1.0) / margin)
    # The neck follows the head less the lower it is.
    neck = ((np.abs(grid_x - cx) < 0.55 * half_w) & (grid_y > cy)).astype(np.float32)
    neck *= 1.0 - smoothstep((grid_y - float(chin[1])) / (0.6 * face))
    head = np.maximum(head, 0.8 * neck * smoothstep(1.0 - (np.abs(grid_x - cx) / (0.6 * half_w))))
    across = 1.0 - smoothstep((np.abs(grid_x - cx) - body_half) / (0.3 * body_half))
    down = smoothstep((grid_y - (float(chin[1]) + 0.1 * face)) / (shoulders - float(chin[1])))
    # The chest rises less towards the frame's lower edge, where nothing is left to show.
    low = 1.0 - 0.7 * smoothstep((grid_y - shoulders) / max(height - shoulders, 1.0))
    body = across * down * low
    # Nothing moves at the region's edges (no seam), the frame's lower edge excepted.
    edge = (smoothstep((grid_x - bx0) / (2 * GRID)) * smoothstep((bx1 - grid_x) / (2 * GRID))
            * smoothstep((grid_y - by0) / (2 * GRID)))
    pivot = (cx, float(chin[1]) - 0.1 * face)
    head, body = (head * edge).astype(np.float32), (body * edge).astype(np.float32)
    return Pose(face, pivot, box, grid_x, grid_y, head, body,
                np.maximum(body, 0.6 * head).astype(np.float32))


class FaceRig:
    """One avatar's rig, per picture of its cycle; owned by the pacer thread."""

    KEEP = 4

    def __init__(self, landmarks: Array, width: int, height: int) -> None:
        self._landmarks = landmarks
        self._size = (width, height)
        self._built: OrderedDict[int, FrameRig] = OrderedDict()

    def at(self, index: int) -> FrameRig:
        rig = self._built.get(index)
        if rig is None:
            rig = frame_rig(self._landmarks[index], *self._size)
            self._built[index] = rig
            while len(self._built) > self.KEEP:
                self._built.popitem(last=False)
        return rig
