"""Framing an avatar on its face, and saying when it will look soft.

At prepare, `face` framing cuts one box of the output's aspect ratio out of the source: the
face (brow to chin) takes `face_share` of its height, the hair has room above (the mesh ends
at the hairline; a full head of hair reaches about 0.65 face heights above it), the eyes sit
at the upper third or, where the hair needs the room, a little lower, and the neck and
shoulders show below. A video gets one box for the whole
clip (from its median face, grown to hold every frame's face): a box that followed the face
frame by frame would slide the background under a still head. The box never reaches outside
the source: where the source cannot give that box it gives the largest one it can, and a
source too narrow for the output's aspect to hold the head keeps its full width, letterboxed
at run time as a `source` framing is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Mode = Literal["source", "face"]

# 468-point mesh indices: both brows (upper edge) and the eyes' corners.
BROWS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
EYES = (33, 133, 362, 263)
CHIN = 152

EYE_LINE = 1 / 3  # the eyes' height in the box, from its top
HAIR = 0.75  # face heights kept above the mesh's top (the hairline): hair and some room
MARGIN = 0.1  # face heights kept beside the mesh and below the chin
SHARP_SCALE = 1.5  # scaled up more than this, a picture looks soft
FILL_TOLERANCE = 0.02  # frames within this of the output's aspect fill it (cut the rest)


@dataclass(frozen=True)
class FaceSpan:
    """One frame's face, in source pixels."""

    brow: float  # y of the brows' midpoint
    eyes: float  # y of the eyes' corners
    chin: float  # y of the chin
    centre: float  # x of the middle of the mesh
    left: float  # the mesh's extent
    top: float
    right: float
    bottom: float

    @property
    def height(self) -> float:
        """Brow to chin."""
        return self.chin - self.brow

    @classmethod
    def of(cls, landmarks: npt.NDArray[np.float32]) -> FaceSpan:
        xy = np.asarray(landmarks, np.float64)[:, :2]
        left, top = xy.min(0)
        right, bottom = xy.max(0)
        return cls(
            brow=float(xy[list(BROWS), 1].mean()), eyes=float(xy[list(EYES), 1].mean()),
            chin=float(xy[CHIN, 1]), centre=float(left + right) / 2, left=float(left),
            top=float(top), right=float(right), bottom=float(bottom),
        )

    def needs(self) -> tuple[float, float, float, float]:
        """What a box must show of this face: the mesh, the hair above, a margin around."""
        m = MARGIN * self.height
        return self.left - m, self.top - HAIR * self.height, self.right + m, self.bottom + m


@dataclass(frozen=True)
class Box:
    """A crop of the source, in its pixels; even, so yuv420p can carry it."""

    x: int
    y: int
    w: int
    h: int
    letterbox: bool = False  # narrower than the output's aspect: bars beside it at run time

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


def median_face(faces: Sequence[FaceSpan]) -> FaceSpan:
    fields = np.array([[f.brow, f.eyes, f.chin, f.centre, f.left, f.top, f.right, f.bottom]
                       for f in faces], np.float64)
    return FaceSpan(*(float(v) for v in np.median(fields, axis=0)))


def face_box(
    faces: Sequence[FaceSpan], width: int, height: int, aspect: float, share: float
) -> Box:
    """The box for the faces of a clip (one face for an image) in a width x height source."""
    if not faces:
        raise ValueError("no face to frame")
    face = median_face(faces)
    spans = np.array([f.needs() for f in faces], np.float64)
    need = (*spans[:, :2].min(0), *spans[:, 2:].max(0))
    need_w, need_h = need[2] - need[0], need[3] - need[1]
    want = max(face.height / share, need_h, need_w / aspect)
    letterbox = bool(width / aspect < min(want, height, need_h))
    if letterbox:  # the output's aspect cannot hold the head here: all the width there is
        h, w = min(want, height), float(width)
    else:
        h = min(want, height, width / aspect)
        w = h * aspect
    x = _place(face.centre - w / 2, need[0], need[2], w, width)
    y = _place(face.eyes - EYE_LINE * h, need[1], need[3], h, height)
    return _even(x, y, w, h, width, height, letterbox)


def _place(want: float, lo: float, hi: float, size: float, limit: int) -> float:
    """Where a span of `size` starts: at `want` if it then holds lo..hi, else as near as it
    holds it (centred on lo..hi when it cannot), and always inside 0..limit."""
    first, last = hi - size, lo
    at = min(max(want, first), last) if first <= last else (lo + hi - size) / 2
    return min(max(at, 0.0), limit - size)


def _even(
    x: float, y: float, w: float, h: float, width: int, height: int, letterbox: bool
) -> Box:
    ew = max(2, min(round(float(w) / 2) * 2, width // 2 * 2))
    eh = max(2, min(round(float(h) / 2) * 2, height // 2 * 2))
    ex = min(max(0, round(float(x) / 2) * 2), (width - ew) // 2 * 2)
    ey = min(max(0, round(float(y) / 2) * 2), (height - eh) // 2 * 2)
    return Box(ex, ey, ew, eh, letterbox)


def fills(w: int, h: int, width: int, height: int) -> bool:
    """Whether a w x h frame fills a width x height picture (cutting what rounding left over)
    rather than being letterboxed into it."""
    return abs(math.log((w / h) / (width / height))) <= FILL_TOLERANCE


def fit_scale(w: int, h: int, width: int, height: int) -> float:
    """The scale a w x h frame is drawn at in a width x height picture."""
    if fills(w, h, width, height):
        return max(width / w, height / h)
    return min(width / w, height / h)


@dataclass(frozen=True)
class Sharpness:
    scale: float  # how much the cached frames are scaled up (< 1: down) to the output
    soft: bool
    text: str


def sharpness(manifest: dict[str, Any], width: int, height: int) -> Sharpness:
    """How the cached frames of a manifest (or of a plan shaped like one) fare at width x
    height: one line saying the scale, and when it is soft, what source would be sharp."""
    fw, fh = (int(v) for v in manifest["size"])
    framing = manifest.get("framing") or {}
    sw, sh = (int(v) for v in framing.get("source_size", (fw, fh)))
    box = framing.get("box")
    what = (f"the face crop {box[2]}x{box[3]} of the {sw}x{sh} source" if box
            else f"the {sw}x{sh} source")
    cut_w, cut_h = (box[2], box[3]) if box else (sw, sh)
    scale = fit_scale(fw, fh, width, height)
    text = f"{what} is drawn at {scale:.2f}x in {width}x{height}"
    if scale <= SHARP_SCALE:
        return Sharpness(scale, False, text)
    if fw < cut_w - 2 or fh < cut_h - 2:
        advice = f"raise avatar.max_side (the frames are cut to {fw}x{fh})"
    else:
        grow = scale / SHARP_SCALE
        advice = (f"a source of {math.ceil(sw * grow)}x{math.ceil(sh * grow)} or more "
                  f"would be sharp (at most {SHARP_SCALE}x)")
    return Sharpness(scale, True, f"{what} is scaled up {scale:.2f}x to {width}x{height} and "
                     f"looks soft; {advice}")
