"""The 468-point face mesh: a 192x192 RGB crop in [0, 1], rotated so the eyes are level and
scaled to 1.5x the detected box, in; 468 (x, y, z) points in crop pixels and a face score out."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from .detector import Detection
from .models import LANDMARK_FILE, TfliteModel

INPUT = 192
CROP_SCALE = 1.5
MIN_FACE_SCORE = 0.5

Array = npt.NDArray[np.float32]


class Landmarker:
    def __init__(self) -> None:
        self._model = TfliteModel(LANDMARK_FILE)

    def landmarks(
        self, rgb: npt.NDArray[np.uint8], det: Detection
    ) -> tuple[Array, float] | None:
        """(468, 3) points in image pixels and the face score, or None if no face is there."""
        to_crop = _crop_transform(det)
        crop = cv2.warpAffine(
            rgb, to_crop, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        raw, flag = self._model(crop.astype(np.float32)[None] / 255.0)
        score = float(1.0 / (1.0 + math.exp(-float(np.clip(flag.reshape(-1)[0], -80, 80)))))
        if score < MIN_FACE_SCORE:
            return None
        pts = raw.reshape(468, 3).astype(np.float32)
        back = cv2.invertAffineTransform(to_crop)
        xy = pts[:, :2] @ back[:, :2].T + back[:, 2]
        scale = float(np.hypot(back[0, 0], back[1, 0]))
        out = np.concatenate([xy, pts[:, 2:] * scale], axis=1).astype(np.float32)
        return out, score


def _crop_transform(det: Detection) -> npt.NDArray[np.float64]:
    """Affine map from image to the square crop the model expects."""
    right_eye, left_eye = det.keypoints[0], det.keypoints[1]
    dx, dy = float(left_eye[0] - right_eye[0]), float(left_eye[1] - right_eye[1])
    if dx < 0:  # keypoint order depends on mirroring; the level line is what matters
        dx, dy = -dx, -dy
    angle = math.degrees(math.atan2(dy, dx))
    cx = float(det.box[0] + det.box[2]) / 2
    cy = float(det.box[1] + det.box[3]) / 2
    side = det.size * CROP_SCALE
    m = cv2.getRotationMatrix2D((cx, cy), angle, INPUT / side)
    m[0, 2] += INPUT / 2 - cx
    m[1, 2] += INPUT / 2 - cy
    return np.asarray(m, dtype=np.float64)
