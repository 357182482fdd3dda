"""Per-frame face crops and masks, in the 256x256 crop space a face model works in.

The crop is a square around the face, a little low so the chin is well inside it. The mouth
mask covers the lips and a margin; the lower-face mask covers the face outline below the
nose line. Both are feathered so that anything blended through them has no seam.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from . import mesh

CROP = 256
Array = npt.NDArray[np.float32]
Mask = npt.NDArray[np.uint8]


def crop_box(landmarks: Array) -> Array:
    """Square (x0, y0, x1, y1) around the face, in image pixels."""
    xy = landmarks[:, :2]
    x0, y0 = xy.min(0)
    x1, y1 = xy.max(0)
    side = 1.25 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.04 * side
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def to_crop(points: Array, box: Array) -> Array:
    scale = CROP / float(box[2] - box[0])
    return np.asarray((points[:, :2] - box[:2]) * scale, dtype=np.float32)


def _feather(mask: Mask, radius: float) -> Mask:
    k = max(3, int(radius) * 2 + 1)
    return np.asarray(cv2.GaussianBlur(mask, (k, k), radius / 2), dtype=np.uint8)


def mouth_mask(landmarks: Array, box: Array) -> Mask:
    pts = to_crop(landmarks, box)
    lips = np.concatenate([pts[list(mesh.OUTER_UPPER)], pts[list(mesh.OUTER_LOWER)][::-1]])
    width = float(np.linalg.norm(pts[mesh.MOUTH_LEFT] - pts[mesh.MOUTH_RIGHT]))
    mask = np.zeros((CROP, CROP), np.uint8)
    cv2.fillPoly(mask, [np.round(lips).astype(np.int32)], 255)
    grow = max(1, int(0.15 * width))
    mask = np.asarray(cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)))
    return _feather(mask, max(2.0, 0.1 * width))


def lower_face_mask(landmarks: Array, box: Array) -> Mask:
    pts = to_crop(landmarks, box)
    oval = pts[list(mesh.FACE_OVAL)]
    nose_y = float(pts[mesh.NOSE_BOTTOM][1])
    mask = np.zeros((CROP, CROP), np.uint8)
    cv2.fillPoly(mask, [np.round(oval).astype(np.int32)], 255)
    top = max(0, round(nose_y))
    mask[:top] = 0
    return _feather(mask, 0.03 * CROP)
