"""BlazeFace short-range face detection: 128x128 input in [-1, 1], 896 SSD anchors, one box and
six keypoints (eyes, nose, mouth, ears) per anchor, weighted non-maximum suppression."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from .models import DETECTOR_FILE, TfliteModel

INPUT = 128
MIN_SCORE = 0.5
NMS_IOU = 0.3

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Detection:
    box: Array  # x0, y0, x1, y1 in image pixels
    keypoints: Array  # (6, 2) in image pixels: right eye, left eye, nose, mouth, ears
    score: float

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def _anchors() -> Array:
    # Two anchors per cell on the 16x16 map (stride 8), six on the 8x8 map (three layers of
    # stride 16 merged); anchor centres sit in the middle of their cells.
    centres = []
    for cells, per_cell in ((16, 2), (8, 6)):
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.asarray(centres, dtype=np.float32)


class FaceDetector:
    def __init__(self) -> None:
        self._model = TfliteModel(DETECTOR_FILE)
        self._anchors = _anchors()

    def detect(self, rgb: npt.NDArray[np.uint8]) -> list[Detection]:
        """Faces in an RGB image, best first."""
        h, w = rgb.shape[:2]
        side = max(h, w)
        # Letterbox into a square so the model sees undistorted faces.
        square = np.zeros((side, side, 3), dtype=np.uint8)
        oy, ox = (side - h) // 2, (side - w) // 2
        square[oy : oy + h, ox : ox + w] = rgb
        small = cv2.resize(square, (INPUT, INPUT), interpolation=cv2.INTER_AREA)
        x = small.astype(np.float32) / 127.5 - 1.0
        raw_boxes, raw_scores = self._model(x[None])
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1), -80, 80)))
        keep = np.flatnonzero(scores >= MIN_SCORE)
        if keep.size == 0:
            return []
        raw = raw_boxes.reshape(-1, 16)[keep].astype(np.float32) / np.float32(INPUT)
        anchors = self._anchors[keep]
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        bw, bh = raw[:, 2], raw[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = raw[:, 4:].reshape(-1, 6, 2) + anchors[:, None, :]
        found = _weighted_nms(
            boxes.astype(np.float32), kps.astype(np.float32), scores[keep].astype(np.float32)
        )
        shift = np.array([ox, oy], dtype=np.float32)
        return [
            Detection(
                box=(b.reshape(2, 2) * side - shift).reshape(4).astype(np.float32),
                keypoints=(k * side - shift).astype(np.float32),
                score=s,
            )
            for b, k, s in found
        ]


def _iou(box: Array, others: Array) -> Array:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9), dtype=np.float32)


def _weighted_nms(boxes: Array, kps: Array, scores: Array) -> list[tuple[Array, Array, float]]:
    """Overlapping candidates are averaged, weighted by score, instead of dropped: steadier
    boxes from frame to frame than plain suppression."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    out = []
    remaining = np.arange(len(scores))
    while remaining.size:
        best = remaining[0]
        overlap = _iou(boxes[best], boxes[remaining]) >= NMS_IOU
        group = remaining[overlap]
        wts = scores[group][:, None]
        box = (boxes[group] * wts).sum(0) / wts.sum()
        kp = (kps[group] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((box.astype(np.float32), kp.astype(np.float32), float(scores[best])))
        remaining = remaining[~overlap]
    return out
