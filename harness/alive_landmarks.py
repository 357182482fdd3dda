"""The landmarkers the alive meter (harness/alive_meter.py) reads a face with, each reduced to
the same few measures, so one meter runs on either and their figures can be set side by side:

* `MediaPipeFace`: the project's own detector and 468-point mesh (avatar/track.py), with the
  eyes read by MediaPipe's iris model (`iris_landmark.tflite`, shipped in the same wheel as the
  mesh), as MediaPipe's `refine_landmarks` does. The mesh alone barely sees a closed eye: on the
  bundled portrait with its lids painted shut its eye aspect ratio falls only to 0.93 of open,
  where the iris model's contour falls to about 0.3.
* `DlibFace`: dlib's HOG detector and 68-point shape predictor (requirements-bench.txt), a
  second landmarker that shares nothing with the daemon's.

Eyes are named as the picture shows them: "left" is the eye on the image's left (the
subject's right eye).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from avatarcast.avatar import mesh
from avatarcast.avatar.models import TfliteModel
from avatarcast.avatar.track import FaceTracker

Array = npt.NDArray[np.float64]
Image = npt.NDArray[np.uint8]

IRIS_FILE = "iris_landmark.tflite"
IRIS_INPUT = 64
IRIS_ROI = 2.3  # the crop's side in eye widths (MediaPipe's iris_landmark_landmarks_to_roi)
# The iris model's 71 contour points start with the lower lid from the outer corner (0) to the
# inner one (8), then the upper lid between them (9..15); these pairs face each other.
IRIS_LIDS = ((11, 3), (12, 4), (13, 5))

# MediaPipe mesh: the eyes' corners (outer, inner) in picture order, the brows' upper edge,
# points that move with the skull only (nose bridge and tip, forehead, eye corners).
MP_CORNERS = ((33, 133), (263, 362))
MP_BROWS = ((70, 63, 105, 66, 107), (300, 293, 334, 296, 336))
MP_EYE_AREA = ((33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
               (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249))
MP_RIGID = (33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 9, 8, 151, 122, 351)

# dlib's 68 points: per eye (outer corner, upper, upper, inner corner, lower, lower).
DLIB_EYES = ((36, 37, 38, 39, 40, 41), (45, 44, 43, 42, 47, 46))
DLIB_BROWS = ((17, 18, 19, 20, 21), (26, 25, 24, 23, 22))
DLIB_RIGID = (27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45)
JITTER = ((0, 0, 0), (-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1),
          (-1, -1, 1), (1, 1, -1))  # (x, y, size) steps of the boxes dlib's points are taken over


@dataclass(frozen=True)
class FacePoints:
    """One face, as the meter needs it (pixels of the frame)."""

    openness: tuple[float, float]  # per eye: the lids' mean gap / the eye's width
    gaze: tuple[float, float] | None  # iris from the eyes' middle, in eye widths (x, y down)
    brows: float  # the brows' height above the eyes' line / the distance between the eyes
    rigid: Array  # (k, 2) points that move with the skull only (the landmark view of pose)
    mouth: tuple[float, float]  # the lips' gap and the mouth's width, px (as bench/lipsync)
    outline: Array  # (m, 2) the face's outline
    eyes: tuple[Array, Array]  # each eye's outline with its brow, to keep out of the head's
    nose: Array  # (2,) the bottom of the nose: below it the jaw moves with speech
    chin: Array  # (2,)


class Landmarker(Protocol):
    name: str

    def find(self, rgb: Image) -> FacePoints | None: ...


def _brow_height(corners: list[tuple[Array, Array]], brows: list[Array]) -> float:
    """Mean distance of each brow above the line through its eye's corners, over the distance
    between the eyes' centres (so it reads the same at any size and roll)."""
    centres = [(a + b) / 2 for a, b in corners]
    iod = float(np.linalg.norm(centres[1] - centres[0])) or 1.0
    out = []
    for (a, b), brow in zip(corners, brows, strict=True):
        axis = (b - a) / (float(np.linalg.norm(b - a)) or 1.0)
        rel = brow.mean(0) - (a + b) / 2
        out.append(abs(float(rel[0] * axis[1] - rel[1] * axis[0])))
    return float(np.mean(out)) / iod


class MediaPipeFace:
    """The daemon's landmarker, with its eyes refined by MediaPipe's iris model."""

    name = "mediapipe"

    def __init__(self) -> None:
        self._tracker = FaceTracker()
        self._iris = TfliteModel(IRIS_FILE)

    def find(self, rgb: Image) -> FacePoints | None:
        lm = self._tracker.find(np.ascontiguousarray(rgb))
        if lm is None:
            return None
        p = lm[:, :2].astype(np.float64)
        openness, corners, irises = [], [], []
        for k, (outer, inner) in enumerate(MP_CORNERS):
            contour, iris = self._eye(rgb, p[outer], p[inner], flip=k == 1)
            a, b = contour[0], contour[8]
            width = float(np.linalg.norm(b - a)) or 1.0
            openness.append(float(np.mean([np.linalg.norm(contour[u] - contour[d])
                                           for u, d in IRIS_LIDS])) / width)
            corners.append((a, b))
            irises.append(iris)
        gaze = self._gaze(corners, irises)
        brows = [p[list(idx)] for idx in MP_BROWS]
        eyes = tuple(np.r_[p[list(area)], p[list(brow)]]
                     for area, brow in zip(MP_EYE_AREA, MP_BROWS, strict=True))
        return FacePoints(
            openness=(openness[0], openness[1]), gaze=gaze,
            brows=_brow_height(corners, brows), rigid=p[list(MP_RIGID)],
            mouth=(float(np.linalg.norm(p[13] - p[14])),
                   float(np.linalg.norm(p[mesh.MOUTH_RIGHT] - p[mesh.MOUTH_LEFT]))),
            outline=p[list(mesh.FACE_OVAL)], eyes=(eyes[0], eyes[1]),
            nose=p[mesh.NOSE_BOTTOM], chin=p[mesh.CHIN])

    def _eye(self, rgb: Image, a: Array, b: Array, *, flip: bool) -> tuple[Array, Array]:
        """(71, 2) eye contour and the iris centre, in frame pixels. The model knows one eye
        side; the other eye is shown to it mirrored, as MediaPipe does."""
        # Levelled along the picture's x (left corner to right one), or the crop turns over.
        centre, d = (a + b) / 2, (b - a if b[0] >= a[0] else a - b)
        angle = math.degrees(math.atan2(float(d[1]), float(d[0])))
        side = IRIS_ROI * float(np.linalg.norm(d))
        to_crop = np.asarray(cv2.getRotationMatrix2D(
            (float(centre[0]), float(centre[1])), angle, IRIS_INPUT / side), np.float64)
        to_crop[:, 2] += IRIS_INPUT / 2 - centre
        crop = cv2.warpAffine(rgb, to_crop, (IRIS_INPUT, IRIS_INPUT), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        if flip:
            crop = crop[:, ::-1]
        outs = self._iris(np.ascontiguousarray(crop, dtype=np.float32)[None] / 255.0)
        contour = next(o for o in outs if o.size == 71 * 3).reshape(71, 3)[:, :2]
        iris = next(o for o in outs if o.size == 5 * 3).reshape(5, 3)[:1, :2]
        pts = np.r_[contour, iris].astype(np.float64)
        if flip:
            pts[:, 0] = IRIS_INPUT - pts[:, 0]
        back = cv2.invertAffineTransform(to_crop)
        pts = pts @ back[:, :2].T + back[:, 2]
        return pts[:71], pts[71]

    @staticmethod
    def _gaze(corners: list[tuple[Array, Array]], irises: list[Array]) -> tuple[float, float]:
        """Both irises from their eyes' middles, along and across the eye line, in eye widths:
        x to the image's right, y down."""
        out = []
        for (a, b), iris in zip(corners, irises, strict=True):
            d = b - a if b[0] > a[0] else a - b  # along the picture's x, whichever corner
            width = float(np.linalg.norm(d)) or 1.0
            axis = d / width
            rel = iris - (a + b) / 2
            out.append((float(rel @ axis) / width,
                        float(rel[1] * axis[0] - rel[0] * axis[1]) / width))
        return (float(np.mean([g[0] for g in out])), float(np.mean([g[1] for g in out])))


class DlibFace:
    """dlib's 68 points, found near the last face (a whole 720p frame takes HOG ~0.1 s)."""

    name = "dlib"

    def __init__(self) -> None:
        dlib: Any = importlib.import_module("dlib")  # untyped; optional (bench only)
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or spec.origin is None:
            raise ImportError("face_recognition_models is not installed")
        data = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
        self._dlib = dlib
        self._detect = dlib.get_frontal_face_detector()
        self._predict = dlib.shape_predictor(str(data))
        self._box: Any = None

    def _best(self, rgb: Image) -> Any:
        """The detection dlib is surest of: the portrait's round mission patch is found as a
        face as large as the real one (in some JPEG frames), never as surely."""
        boxes, scores, _ = self._detect.run(np.ascontiguousarray(rgb), 0, 0.0)
        return boxes[int(np.argmax(scores))] if len(boxes) else None

    def _find_box(self, rgb: Image) -> Any:
        h, w = rgb.shape[:2]
        if self._box is not None:
            b = self._box
            m = max(b.width(), b.height())
            x0, y0 = max(0, b.left() - m), max(0, b.top() - m)
            x1, y1 = min(w, b.right() + m), min(h, b.bottom() + m)
            f = self._best(rgb[y0:y1, x0:x1])
            if f is not None:
                return self._dlib.rectangle(f.left() + x0, f.top() + y0, f.right() + x0,
                                            f.bottom() + y0)
        return self._best(rgb)

    def _shape(self, rgb: Image, box: Any) -> Array:
        """The 68 points, each the median over the box and eight boxes shifted or scaled by 4%
        of its width: the predictor's eyes follow its box (one detection's box against the
        next's, a few pixels apart, read one shut eye as 0.09 and 0.34 of its width)."""
        j = 0.04 * box.width()
        found = []
        for dx, dy, ds in JITTER:
            r = self._dlib.rectangle(round(box.left() + (dx - ds) * j),
                                     round(box.top() + (dy - ds) * j),
                                     round(box.right() + (dx + ds) * j),
                                     round(box.bottom() + (dy + ds) * j))
            s = self._predict(rgb, r)
            found.append([[s.part(i).x, s.part(i).y] for i in range(68)])
        return np.asarray(np.median(np.asarray(found, np.float64), axis=0), np.float64)

    def find(self, rgb: Image) -> FacePoints | None:
        rgb = np.ascontiguousarray(rgb)
        self._box = self._find_box(rgb)
        if self._box is None:
            return None
        p = self._shape(rgb, self._box)
        openness, corners = [], []
        for o, u1, u2, i, d1, d2 in DLIB_EYES:
            width = float(np.linalg.norm(p[i] - p[o])) or 1.0
            openness.append(float(np.linalg.norm(p[u1] - p[d2]) + np.linalg.norm(p[u2] - p[d1]))
                            / (2 * width))
            corners.append((p[o], p[i]))
        brows = [p[list(idx)] for idx in DLIB_BROWS]
        eyes = tuple(np.r_[p[list(e)], p[list(b)]]
                     for e, b in zip(DLIB_EYES, DLIB_BROWS, strict=True))
        return FacePoints(
            openness=(openness[0], openness[1]), gaze=None,
            brows=_brow_height(corners, brows), rigid=p[list(DLIB_RIGID)],
            mouth=(float(np.linalg.norm(p[62] - p[66])), float(np.linalg.norm(p[48] - p[54]))),
            outline=np.r_[p[0:17], p[26:16:-1]], eyes=(eyes[0], eyes[1]),
            nose=p[33], chin=p[8])


def landmarkers(dlib: bool = True) -> list[Landmarker]:
    """MediaPipe, and dlib where it is installed (`pip install -r requirements-bench.txt`)."""
    out: list[Landmarker] = [MediaPipeFace()]
    if dlib:
        try:
            out.append(DlibFace())
        except ImportError as exc:
            print(f"dlib landmarker unavailable ({exc}); requirements-bench.txt installs it")
    return out
