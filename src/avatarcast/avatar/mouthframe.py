"""The canonical mouth frame shared by the mouth atlas and the frames it is pasted into.

A face is brought into it by the similarity (scale, rotation, shift) that best maps its stable
points (eye corners, nose bridge, nose tip and wings: nothing that moves when the person
speaks) onto a template. The atlas keeps its mouth crops in this frame; at run time the same
points of an idle frame give the way back. Crops are yuv444 (the frames' own BT.601 limited
range), sampled straight from yuv420p frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ..media.frames import Frame
from . import mesh

Array = npt.NDArray[np.float32]
Affine = npt.NDArray[np.float64]  # 2x3

# Eye corners, between the eyes, nose bridge, tip, bottom and wings.
STABLE = (33, 133, 362, 263, 168, 6, 1, 2, 98, 327)
HALF_WIDTH_PX = 56.0  # the mouth's half-width in the canonical frame, at rest


def similarity(src: npt.ArrayLike, dst: npt.ArrayLike) -> Affine:
    """The least-squares similarity taking points src to dst (no reflection), as a 2x3."""
    s = np.asarray(src, np.float64)[:, :2]
    d = np.asarray(dst, np.float64)[:, :2]
    ms, md = s.mean(0), d.mean(0)
    s0, d0 = s - ms, d - md
    norm = float((s0**2).sum()) or 1.0
    a = float((s0 * d0).sum()) / norm
    b = float((s0[:, 0] * d0[:, 1] - s0[:, 1] * d0[:, 0]).sum()) / norm
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def invert(m: Affine) -> Affine:
    return np.asarray(cv2.invertAffineTransform(m), np.float64)


def apply(m: Affine, points: npt.ArrayLike) -> Array:
    p = np.asarray(points, np.float64)[..., :2]
    return np.asarray(p @ m[:, :2].T + m[:, 2], np.float32)


def halve(m: Affine) -> Affine:
    """For a map into full-resolution pixels, the same map into half-resolution pixels."""
    return np.asarray(m * 0.5, np.float64)


def lip_measures(landmarks: Array, to_canonical: Affine) -> tuple[float, float]:
    """How far the lips are apart (in canonical half-widths) and how wide the mouth is
    (relative to HALF_WIDTH_PX: 0 at the reference's median)."""
    upper = apply(to_canonical, landmarks[list(mesh.INNER_UPPER[3:8])])
    lower = apply(to_canonical, landmarks[list(mesh.INNER_LOWER[3:8])])
    corners = apply(to_canonical, landmarks[[mesh.MOUTH_RIGHT, mesh.MOUTH_LEFT]])
    gap = float(np.mean(lower[:, 1] - upper[:, 1])) / HALF_WIDTH_PX
    width = float(np.linalg.norm(corners[1] - corners[0])) / (2 * HALF_WIDTH_PX) - 1.0
    return max(gap, 0.0), width


@dataclass(frozen=True)
class MouthFrame:
    template: Array  # (len(STABLE), 2): where the stable points sit, canonical pixels
    size: tuple[int, int]  # crop width, height
    centre: tuple[float, float]  # the mouth at rest, canonical pixels
    chin_y: float
    nose_y: float

    def to_canonical(self, landmarks: Array) -> Affine:
        """Frame pixels -> canonical pixels for a face with these landmarks."""
        return similarity(landmarks[list(STABLE)], self.template)

    def crop(self, frame: Frame, to_canonical: Affine) -> npt.NDArray[np.uint8]:
        """The canonical crop of a yuv420p frame, as (H, W, 3) yuv444."""
        rows, w = frame.shape
        h = rows * 2 // 3
        cw, ch = self.size
        out = np.empty((ch, cw, 3), np.uint8)
        out[..., 0] = cv2.warpAffine(frame[:h], to_canonical, (cw, ch), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
        quarter = (h // 2) * (w // 2)
        chroma = frame.reshape(-1)[h * w :]
        # Canonical <- half-resolution pixels: scale the input side by two.
        m_half = to_canonical @ np.diag([2.0, 2.0, 1.0])
        for k in (0, 1):
            plane = chroma[k * quarter : (k + 1) * quarter].reshape(h // 2, w // 2)
            out[..., 1 + k] = cv2.warpAffine(plane, m_half, (cw, ch), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REPLICATE)
        return out

    def as_arrays(self) -> dict[str, npt.NDArray[np.float32]]:
        return {
            "template": self.template,
            "frame": np.array([*self.size, *self.centre, self.chin_y, self.nose_y], np.float32),
        }

    @staticmethod
    def from_arrays(template: Array, frame: Array) -> MouthFrame:
        w, h, cx, cy, chin, nose = (float(x) for x in frame)
        return MouthFrame(np.asarray(template, np.float32), (int(w), int(h)), (cx, cy), chin,
                          nose)


def fit_frame(landmarks: Array) -> MouthFrame:
    """The canonical frame for a face seen in these frames (N, 468, 3): the template is the
    median of their stable points after each is aligned to the first, scaled so that the mouth
    at rest is HALF_WIDTH_PX wide on each side; the crop reaches from the nose to below the
    chin and two half-widths to each side of the mouth."""
    ref = landmarks[0][list(STABLE)]
    aligned = np.stack([apply(similarity(lm[list(STABLE)], ref), lm) for lm in landmarks])
    med = np.median(aligned, axis=0)
    half = float(np.median(np.linalg.norm(
        aligned[:, mesh.MOUTH_LEFT] - aligned[:, mesh.MOUTH_RIGHT], axis=1))) / 2
    scale = HALF_WIDTH_PX / max(half, 1.0)
    mouth = (med[mesh.INNER_UPPER[5]] + med[mesh.INNER_LOWER[5]]) / 2
    a = HALF_WIDTH_PX
    # Canonical origin: the crop's top-left corner, 2.2 half-widths left of the mouth and a
    # fifth of a half-width above the nose's bottom.
    origin = np.array([mouth[0] * scale - 2.2 * a, med[mesh.NOSE_BOTTOM][1] * scale - 0.2 * a])
    template = (med[list(STABLE)] * scale - origin).astype(np.float32)
    chin = float(med[mesh.CHIN][1] * scale - origin[1])
    width = round(4.4 * a) // 2 * 2
    height = round(chin + 0.7 * a) // 2 * 2
    cx, cy = float(mouth[0] * scale - origin[0]), float(mouth[1] * scale - origin[1])
    return MouthFrame(template, (width, height), (cx, cy), chin, 0.2 * a)
