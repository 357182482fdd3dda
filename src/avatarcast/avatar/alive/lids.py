"""The eyes: lids that close, brows that lift, a gaze that moves, drawn from the picture's own
pixels on yuv420p.

Each column of an eye's region is remapped from top to bottom through knots (output y taken
from source y):

* the forehead above the brow does not move; the brow and the skin between it and the lid
  slide up when the brow lifts;
* the upper lid comes down: the skin between the brow and the lid's margin stretches down to
  where the lid's edge now is, so the closed lid is the portrait's own lid skin, its lashes
  carried down with its margin, a little darkened;
* below the lid's edge the eyeball stays where it is (the lid slides over it), its iris moved
  inside the opening by the gaze; the lower lid rises a little to meet the upper one.

Every move falls to nothing at the region's edges and at the eye's corners, so no seam shows.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from ...media.frames import Frame, chroma_planes
from .rig import Eye, _along, smoothstep

Array = npt.NDArray[np.float32]
_MEET = 0.8  # where the lids meet, as a share of the opening from the upper lid
_LASH = 0.2  # how much darker the lid's edge is when closed


def move_eye(out: Frame, src: Frame, eye: Eye, *, closed: float, brow_px: float,
             gaze: tuple[float, float]) -> None:
    """Draw `eye` of `src` into `out` (same shape, yuv420p) with its lids `closed` (0 open .. 1
    shut), its brow lifted by `brow_px` and its iris moved by `gaze` (x, y: -1 .. 1 of how far
    it can go)."""
    x0, y0, x1, y1 = eye.box
    fh = src.shape[0] * 2 // 3
    if x1 - x0 < 4 or y1 - y0 < 4:
        return
    map_x, map_y, lash = _maps(eye, x0, y0, x1, y1, closed, brow_px, gaze)
    luma = cv2.remap(src[:fh], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if lash is not None:
        luma = np.clip(luma.astype(np.float32) * lash + 0.5, 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = luma
    cmx = np.ascontiguousarray(map_x[::2, ::2] / 2)
    cmy = np.ascontiguousarray(map_y[::2, ::2] / 2)
    for plane, dst in zip(chroma_planes(src), chroma_planes(out), strict=True):
        dst[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = cv2.remap(
            plane, cmx, cmy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _maps(eye: Eye, x0: int, y0: int, x1: int, y1: int, closed: float, brow_px: float,
          gaze: tuple[float, float]) -> tuple[Array, Array, Array | None]:
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    w = eye.width
    # The landmarks sit a little inside the eye as it shows (its white reaches past the
    # corners and below the lower lid's points): the lids cover that much more.
    ex0 = float(eye.upper[:, 0].min()) - 0.06 * w
    ex1 = float(eye.upper[:, 0].max()) + 0.06 * w
    r = np.clip((xs - ex0) / max(ex1 - ex0, 1.0), 0.0, 1.0)
    up = _along(eye.upper, xs)
    lo = _along(eye.lower, xs) + (0.2 * eye.opening) * np.sin(np.pi * r)
    inside = (xs > ex0) & (xs < ex1)
    h = np.where(inside, np.maximum(lo - up, 0.0), 0.0).astype(np.float32)
    bl = _along(eye.brow, xs)
    # The brow lifts whole, fading out beyond its ends and towards the region's sides.
    bx0, bx1 = float(eye.brow[:, 0].min()), float(eye.brow[:, 0].max())
    reach = 0.3 * (bx1 - bx0) + 1.0
    lift = brow_px * (smoothstep((xs - (bx0 - reach)) / reach)
                      * smoothstep(((bx1 + reach) - xs) / reach))
    gap = np.maximum(up - bl, 0.15 * w)
    top = np.maximum(bl - 0.9 * gap, y0 + 1.0)
    edge = up + closed * _MEET * h  # the upper lid's edge
    low_edge = lo - closed * (1.0 - _MEET) * h
    bottom = np.minimum(lo + 0.6 * max(eye.opening, 1.0) + 1.0, y1 - 1.0)

    y = np.broadcast_to(ys, (len(ys), len(xs)))
    src_y = y.astype(np.float32).copy()
    brow_to = bl - lift
    # Forehead to the brow's lower edge: shifted up by the lift.
    sel = (y >= top) & (y < brow_to)
    src_y = np.where(sel, top + (y - top) * (bl - top) / np.maximum(brow_to - top, 1e-3), src_y)
    # Brow to the lid's edge: the skin and the lid, stretched down over the eye; the lid's
    # margin (its lashes) keeps its own thickness and comes down whole.
    margin = np.minimum(0.25 * (up - bl), 0.1 * w + 1.0)
    skin_to = edge - margin
    sel = (y >= brow_to) & (y < skin_to)
    src_y = np.where(sel, bl + (y - brow_to) * (up - margin - bl)
                     / np.maximum(skin_to - brow_to, 1e-3), src_y)
    sel = (y >= skin_to) & (y < edge)
    src_y = np.where(sel, y - (edge - up), src_y)
    # Below the lower lid's (raised) edge, down to the cheek: squeezed up with it.
    sel = (y >= low_edge) & (y < bottom) & (h[None] > 0)
    src_y = np.where(sel, lo + (y - low_edge) * (bottom - lo) / np.maximum(bottom - low_edge,
                                                                           1e-3), src_y)
    src_x = np.broadcast_to(xs[None], y.shape).astype(np.float32).copy()
    gx, gy = gaze
    if gx or gy:
        # The iris moves inside what is open of the eye; nothing moves at its rim.
        open_ = (y >= edge) & (y < low_edge)
        s = np.clip((y - edge) / np.maximum(low_edge - edge, 1e-3), 0.0, 1.0)
        bump = (np.sin(np.pi * r)[None] * np.sin(np.pi * s)) * open_
        src_x -= (gx * 0.22 * w) * bump
        src_y -= (gy * 0.35 * h[None]) * bump
    lash = None
    if closed > 0.05:
        sigma = max(1.0, 0.06 * w)
        across = smoothstep(np.minimum(xs - ex0, ex1 - xs) / (0.15 * w))
        lash = (1.0 - _LASH * closed * across[None]
                * np.exp(-(((y - edge) / sigma) ** 2))).astype(np.float32)
    return src_x.astype(np.float32), src_y.astype(np.float32), lash
