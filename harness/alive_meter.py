"""How alive a face looks, measured from decoded frames as an outside checker would: one frame
at a time (a recording of hours never sits in memory; only a few numbers a frame are kept),
then summed up in figures (harness/alive_figures.py).

Per frame, for each landmarker (harness/alive_landmarks.py):

* each eye's openness: the lids' mean gap over the eye's width (an eye aspect ratio), from
  which blinks are found;
* the brows' height above the eyes, the irises' position (gaze; MediaPipe's iris model only);
* the head's pose as the landmarks show it: a similarity fitted from the first face's
  skull-fixed points (nose, forehead, eye corners) to this frame's;
* the mouth's opening and width (the lip-sync bench's measures, so it can reuse them).

And once, from the picture itself (image registration, not landmarks):

* the head: corners of the first face's skull-fixed skin (forehead, nose, cheeks, hairline;
  not the eyes, brows, mouth or jaw) followed by Lucas-Kanade from the first frame and a
  similarity fitted with RANSAC. A landmarker's points jump by 1-4 px when only the eyes or
  the mouth change (measured on the bundled portrait), so landmarks alone would call every
  blink and syllable a head movement; the pixels do not;
* the body (breathing): the vertical shift of a band below the chin (shoulders, chest), the
  median of its tracked corners.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .alive_landmarks import FacePoints, Image, Landmarker

Array = npt.NDArray[np.float64]

LK_WINDOW, LK_LEVELS = (21, 21), 3
LK_STOP = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
FB_MAX_PX = 0.5  # a corner followed forth and back must come home this close
MIN_POINTS = 8
# The body band below the chin, in face heights (brow to chin) and face widths.
BAND_TOP, BAND_BOTTOM, BAND_HALF_WIDTH = 0.25, 1.0, 1.2
LANDMARK_FIELDS = ("open_l", "open_r", "gaze_x", "gaze_y", "brows", "pose_x", "pose_y",
                   "pose_roll", "mouth_open", "mouth_width")
PICTURE_FIELDS = ("head_x", "head_y", "head_roll", "head_scale", "body_y", "body_x")


def similarity(src: Array, dst: Array) -> Array:
    """The least-squares rotation, uniform scale and translation taking src to dst (Umeyama),
    as a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, float(np.sign(np.linalg.det(u @ vt)) or 1.0)])
    rot = u @ fix @ vt
    scale = float(np.trace(np.diag(sig) @ fix)) / float((s**2).sum() / len(src))
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def moved(m: Array, point: Array) -> tuple[float, float, float, float]:
    """(dx, dy) of `point` under m, its rotation in degrees (clockwise on screen positive, as
    y points down) and its scale."""
    to = m[:, :2] @ point + m[:, 2]
    return (float(to[0] - point[0]), float(to[1] - point[1]),
            math.degrees(math.atan2(m[1, 0], m[0, 0])), float(math.hypot(m[0, 0], m[1, 0])))


class Registration:
    """Where a region of the first frame is now: corners found in it once, followed each frame
    from the first frame (never frame to frame, so nothing accumulates into a drift), checked
    forth and back. Works on a crop around the region, the same crop in every frame."""

    def __init__(self, gray: Image, mask: Image, margin: int) -> None:
        ys, xs = np.nonzero(mask)
        h, w = gray.shape
        self.origin = np.array([max(0, xs.min() - margin), max(0, ys.min() - margin)])
        self._end = (min(w, xs.max() + margin + 1), min(h, ys.max() + margin + 1))
        self._ref = self._crop(gray)
        found = cv2.goodFeaturesToTrack(self._ref, 200, 0.005, 3, mask=self._crop(mask),
                                        blockSize=5)
        self.points = (np.zeros((0, 1, 2), np.float32) if found is None
                       else found.astype(np.float32))
        self._last = self.points.copy()

    def _crop(self, img: Image) -> Image:
        (x0, y0), (x1, y1) = self.origin, self._end
        return np.ascontiguousarray(img[y0:y1, x0:x1])

    @staticmethod
    def _follow(a: Image, b: Image, pts: npt.NDArray[np.float32], guess: npt.NDArray[np.float32]
                ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
        nxt, ok, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, guess.copy(), winSize=LK_WINDOW,
                                              maxLevel=LK_LEVELS, criteria=LK_STOP,
                                              flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        return np.asarray(nxt, np.float32), np.asarray(ok, np.uint8)

    def track(self, gray: Image) -> tuple[Array, Array] | None:
        """(the first frame's corners, where they are now), in frame pixels, for those that
        were followed both ways; None when too few were."""
        if len(self.points) < MIN_POINTS:
            return None
        cur = self._crop(gray)
        # Started from where they were last frame: a large slow drift stays within reach.
        nxt, ok1 = self._follow(self._ref, cur, self.points, self._last)
        back, ok2 = self._follow(cur, self._ref, nxt, self.points)
        err = np.linalg.norm((back - self.points).reshape(-1, 2), axis=1)
        good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (err < FB_MAX_PX)
        if good.sum() < MIN_POINTS:
            return None
        self._last = np.where(good[:, None, None], nxt, self._last).astype(np.float32)
        return (self.points.reshape(-1, 2)[good].astype(np.float64) + self.origin,
                nxt.reshape(-1, 2)[good].astype(np.float64) + self.origin)


def _hull_mask(shape: tuple[int, ...], pts: Array, grow: float = 1.0) -> Image:
    c = pts.mean(0)
    hull = cv2.convexHull(np.round(c + grow * (pts - c)).astype(np.int32))
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    return mask


def head_mask(shape: tuple[int, ...], face: FacePoints) -> Image:
    """The skin that moves with the skull only: the face's outline (grown a little, for the
    hairline) above the bottom of the nose, less each eye with its brow (blinks, gaze, brow
    lifts) grown by a margin."""
    mask = _hull_mask(shape, face.outline, 1.1)
    mask[int(face.nose[1]):] = 0
    for eye in face.eyes:
        mask[_hull_mask(shape, eye, 1.35) > 0] = 0
    return mask


def body_mask(shape: tuple[int, ...], face: FacePoints) -> Image | None:
    """A band below the chin, on the shoulders and chest; None when the frame cuts it off."""
    (x0, y0), (x1, y1) = face.outline.min(0), face.outline.max(0)
    fh, fw, cx = y1 - y0, x1 - x0, (x0 + x1) / 2
    top, bottom = int(face.chin[1] + BAND_TOP * fh), int(face.chin[1] + BAND_BOTTOM * fh)
    left, right = int(cx - BAND_HALF_WIDTH * fw), int(cx + BAND_HALF_WIDTH * fw)
    h, w = shape[:2]
    top, bottom, left, right = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
    if bottom - top < 16 or right - left < 32:
        return None
    mask = np.zeros(shape[:2], np.uint8)
    mask[top:bottom, left:right] = 255
    return mask


class AliveMeter:
    """Feed it decoded RGB frames in order (`add`); `series` gives the per-frame measures.

    Every measure is relative to the first frame with a face: its landmarks, its head skin and
    its body band are the reference. A frame where a landmarker finds no face is counted and
    its measures are NaN; the picture's measures go on as long as enough corners are followed.
    """

    def __init__(self, landmarkers: Iterable[Landmarker], fps: float,
                 picture: bool = True) -> None:
        """`picture`: also the picture's measures (head and body registered), on the first
        landmarker's first face."""
        self.landmarkers = list(landmarkers)
        self.fps = fps
        self.frames = 0
        self.picture = picture
        self._cols: dict[str, array[float]] = ({f: array("f") for f in PICTURE_FIELDS}
                                               if picture else {})
        for lm in self.landmarkers:
            self._cols.update({f"{lm.name}.{f}": array("f") for f in LANDMARK_FIELDS})
        self.missing = {lm.name: 0 for lm in self.landmarkers}
        self._ref_rigid: dict[str, Array] = {}
        self._head: Registration | None = None
        self._body: Registration | None = None
        self.anchor: Array | None = None  # the point between the eyes, first face
        self.body_box: tuple[int, int, int, int] | None = None

    def add(self, rgb: Image) -> None:
        self.frames += 1
        first: FacePoints | None = None
        for k, lm in enumerate(self.landmarkers):
            face = lm.find(rgb)
            if k == 0:
                first = face
            self._landmark_row(lm.name, face)
        if not self.picture:
            return
        gray = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), np.uint8)
        if self._head is None and first is not None:
            self._start_picture(gray, first)
        self._picture_row(gray)

    def _landmark_row(self, name: str, face: FacePoints | None) -> None:
        nan = float("nan")
        if face is None:
            self.missing[name] += 1
            for f in LANDMARK_FIELDS:
                self._cols[f"{name}.{f}"].append(nan)
            return
        ref = self._ref_rigid.setdefault(name, face.rigid)
        dx, dy, roll, _ = moved(similarity(ref, face.rigid), ref.mean(0))
        gaze = face.gaze or (nan, nan)
        row = (*face.openness, *gaze, face.brows, dx, dy, roll, *face.mouth)
        for f, v in zip(LANDMARK_FIELDS, row, strict=True):
            self._cols[f"{name}.{f}"].append(v)

    def _start_picture(self, gray: Image, face: FacePoints) -> None:
        size = float(np.ptp(face.outline[:, 0]))
        self._head = Registration(gray, head_mask(gray.shape, face), margin=int(0.5 * size))
        self.anchor = np.mean([e[:6].mean(0) for e in face.eyes], axis=0)
        band = body_mask(gray.shape, face)
        if band is not None:
            self._body = Registration(gray, band, margin=int(0.15 * size))
            ys, xs = np.nonzero(band)
            self.body_box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))

    def _picture_row(self, gray: Image) -> None:
        head = self._head.track(gray) if self._head is not None else None
        if head is not None and self.anchor is not None:
            m, _ = cv2.estimateAffinePartial2D(head[0], head[1], method=cv2.RANSAC,
                                               ransacReprojThreshold=1.0)
            values = (moved(np.asarray(m, np.float64), self.anchor) if m is not None
                      else (float("nan"),) * 4)
        else:
            values = (float("nan"),) * 4
        body = self._body.track(gray) if self._body is not None else None
        shift = (np.median(body[1] - body[0], axis=0) if body is not None
                 else (float("nan"), float("nan")))
        for f, v in zip(PICTURE_FIELDS, (*values, float(shift[1]), float(shift[0])),
                        strict=True):
            self._cols[f].append(v)

    def series(self) -> dict[str, npt.NDArray[np.float64]]:
        """Each measure per frame: the picture's (head_x, head_y px; head_roll deg; body_y
        px, down positive) and each landmarker's ("<name>.open_l", ...)."""
        return {k: np.asarray(v, np.float64) for k, v in self._cols.items()}

    def info(self) -> dict[str, Any]:
        out = {"frames": self.frames, "fps": self.fps, "faces_not_found": dict(self.missing),
               "landmarkers": [lm.name for lm in self.landmarkers]}
        if self.picture:
            out.update({"head_points": 0 if self._head is None else len(self._head.points),
                        "body_points": 0 if self._body is None else len(self._body.points),
                        "body_box": self.body_box})
        return out


def measure_file(path: Path, width: int, height: int, fps: float, landmarker: str,
                 picture: bool) -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, Any]]:
    """One pass over a recording with one landmarker ("mediapipe" or "dlib"), frame by frame:
    (series, info). A process of its own can run each landmarker's pass."""
    from .alive_landmarks import DlibFace, MediaPipeFace
    from .speak import iter_frames

    meter = AliveMeter([DlibFace() if landmarker == "dlib" else MediaPipeFace()], fps, picture)
    for rgb in iter_frames(path, width, height, "rgb24", 3):
        meter.add(rgb)
    return meter.series(), meter.info()


def merge(*passes: tuple[dict[str, npt.NDArray[np.float64]], dict[str, Any]]
          ) -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, Any]]:
    """Several passes over one recording as if one meter had made them."""
    series: dict[str, npt.NDArray[np.float64]] = {}
    info: dict[str, Any] = {"frames": min(i["frames"] for _, i in passes),
                            "faces_not_found": {}, "landmarkers": []}
    for s, i in passes:
        series.update({k: v[: info["frames"]] for k, v in s.items()})
        info["faces_not_found"].update(i["faces_not_found"])
        info["landmarkers"] += i["landmarkers"]
        info.update({k: v for k, v in i.items() if k not in info or (
            k.endswith("_points") and v)})
    return series, info
