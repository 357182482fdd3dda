"""Face geometry for every frame of the idle cycle.

A frame where no face is found keeps its place: its landmarks are interpolated between the
nearest frames that have one (held at the ends), so frames, landmarks and latents can never
fall out of step along the cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..infra.errors import UserError
from .detector import Detection, FaceDetector
from .landmarker import Landmarker

Array = npt.NDArray[np.float32]
Image = npt.NDArray[np.uint8]


class NoFaceError(UserError):
    """Not one frame of the source shows a face."""


class FaceTracker:
    def __init__(self) -> None:
        self._detector = FaceDetector()
        self._landmarker = Landmarker()

    def find(self, rgb: Image) -> Array | None:
        """(468, 3) landmarks of the largest face, or None."""
        dets = self._detector.detect(rgb)
        if not dets:
            return None
        best: Detection = max(dets, key=lambda d: d.size)
        found = self._landmarker.landmarks(rgb, best)
        return None if found is None else found[0]


def fill_gaps(found: Sequence[Array | None]) -> tuple[Array, npt.NDArray[np.bool_]]:
    have = np.array([f is not None for f in found], dtype=bool)
    if not have.any():
        raise NoFaceError("no face found in any frame of the source")
    idx = np.flatnonzero(have)
    known = np.stack([f for f in found if f is not None])
    n = len(found)
    out = np.empty((n, *known.shape[1:]), dtype=np.float32)
    flat = known.reshape(len(idx), -1)
    # np.interp holds the first/last known value beyond the ends.
    for col in range(flat.shape[1]):
        out.reshape(n, -1)[:, col] = np.interp(np.arange(n), idx, flat[:, col])
    return out, have


def smooth(landmarks: Array) -> Array:
    """A 1-2-1 filter along time, so detector jitter does not shake the warp; the cycle plays
    ping-pong, so the ends reflect."""
    if len(landmarks) < 3:
        return landmarks
    padded = np.concatenate([landmarks[1:2], landmarks, landmarks[-2:-1]])
    return np.asarray(
        (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4, dtype=np.float32
    )
