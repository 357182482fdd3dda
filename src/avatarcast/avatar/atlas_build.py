"""The photoreal mouth atlas, built from a video in which the person talks.

Every frame's lower face is cut out in the canonical mouth frame (mouthframe.py) with the
landmarks prepare already computes, and measured: how far the lips are apart and how wide the
mouth is, against the person's own median. The frames are clustered (k-means over those two
measures and the look of the mouth) into about 14 mouth shapes, and each cluster keeps a few
variants, real pixels with their teeth and tongue, from moments at least a few frames apart.
At run time (face/atlas.py) the variants are chosen per frame for the mouth track.

    atlas.npz   patches (E, H, W, 3) yuv444; open, width (E,): the measures; cluster (E,);
                look (E, F): the variants' appearance, to keep neighbours alike; ring (E, 3):
                the mean colour where the patch is feathered into the frame; mask (H, W);
                scale: the closed and widest opening, the narrowest and widest width;
                template and frame: the canonical frame
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from ..media.frames import Frame
from .mouthframe import HALF_WIDTH_PX, MouthFrame, fit_frame, lip_measures
from .source import decode, fit, probe_size
from .track import FaceTracker, NoFaceError, fill_gaps, smooth

log = logging.getLogger(__name__)

Array = npt.NDArray[np.float32]
CLUSTERS = 14
VARIANTS = 4
MIN_APART = 5  # frames between two variants of one cluster
MIN_FRAMES = 3 * CLUSTERS  # a shorter reference cannot show enough mouth shapes
MAX_FRAMES = 30 * 180  # three minutes at 30 fps
_LOOK_DIMS = 12


class AtlasError(NoFaceError):
    """The talking reference cannot make an atlas (too short, or no face in it)."""


def mask_for(frame: MouthFrame) -> Array:
    """Where a patch replaces the frame: the mouth, the lips' surroundings and the chin, with
    soft edges well inside the crop (nose, cheeks and neck stay the frame's own)."""
    w, h = frame.size
    cx, cy = frame.centre
    a = HALF_WIDTH_PX
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

    def ramp(x: Array, lo: float, hi: float) -> Array:
        t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        return np.asarray(t * t * (3 - 2 * t), np.float32)

    lip_gap = cy - frame.nose_y
    top = ramp(ys, frame.nose_y + 0.25 * lip_gap, frame.nose_y + 0.65 * lip_gap)
    side = 1 - ramp(np.abs(xs - cx), 1.45 * a, 2.0 * a)
    # Below the mouth the region narrows like a jaw: an ellipse down to below the chin.
    ry = max(frame.chin_y + 0.55 * a - cy, 1.0)
    r = np.sqrt(((xs - cx) / (2.0 * a)) ** 2 + (np.maximum(ys - cy, 0) / ry) ** 2)
    jaw = 1 - ramp(r, 0.75, 1.0)
    return np.asarray(top * side * jaw, np.float32)


def _look(patch: npt.NDArray[np.uint8], frame: MouthFrame) -> Array:
    """The mouth's luma, small and without its mean: what variants are compared by."""
    cx, cy = frame.centre
    a = HALF_WIDTH_PX
    x0, x1 = int(cx - 1.4 * a), int(cx + 1.4 * a)
    y0, y1 = int(cy - 0.6 * a), int(cy + 0.9 * a)
    small = cv2.resize(patch[y0:y1, x0:x1, 0], (32, 24), interpolation=cv2.INTER_AREA)
    v = small.astype(np.float32).ravel()
    return np.asarray(v - v.mean(), np.float32)


def _frames(source: Path, size: tuple[int, int], fps: int, ffmpeg: str) -> Iterator[Frame]:
    for rgb in decode(source, size, fps, MAX_FRAMES, ffmpeg):
        yield np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), np.uint8)


def build_atlas(
    source: Path, *, fps: int, max_side: int, ffmpeg: str = "ffmpeg",
    show_progress: bool = False,
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
    """The atlas's arrays (for atlas.npz) and a summary for the manifest."""
    width, height, estimate = probe_size(source, ffmpeg)
    size = fit(width, height, max_side)
    tracker = FaceTracker()
    found: list[Array | None] = []
    with tqdm(total=min(estimate, MAX_FRAMES), unit="frame", desc="talking reference: faces",
              disable=not show_progress) as bar:
        for rgb in decode(source, size, fps, MAX_FRAMES, ffmpeg):
            found.append(tracker.find(rgb))
            bar.update(1)
    try:
        landmarks, have = fill_gaps(found)
    except NoFaceError:
        raise AtlasError(f"no face found in the talking reference {source}") from None
    if int(have.sum()) < MIN_FRAMES:
        raise AtlasError(
            f"the talking reference {source} shows a face in {int(have.sum())} frame(s); an "
            f"atlas needs at least {MIN_FRAMES} (a minute of reading aloud is best)")
    steady = smooth(landmarks)
    frame = fit_frame(landmarks[have])
    patches, looks, measures, index = [], [], [], []
    with tqdm(total=len(found), unit="frame", desc="talking reference: mouths",
              disable=not show_progress) as bar:
        for i, yuv in enumerate(_frames(source, size, fps, ffmpeg)):
            bar.update(1)
            if i >= len(found) or not have[i]:
                continue
            m = frame.to_canonical(steady[i])
            patch = frame.crop(yuv, m)
            patches.append(patch)
            looks.append(_look(patch, frame))
            measures.append(lip_measures(landmarks[i], m))
            index.append(i)
    arrays, summary = _cluster(np.stack(patches), np.stack(looks), np.array(measures, np.float32),
                               np.array(index), frame)
    summary["frames"] = len(found)
    summary["faces"] = int(have.sum())
    return arrays, summary


def _spaced(order: npt.NDArray[Any], index: npt.NDArray[Any]) -> list[int]:
    """The first VARIANTS of `order` that are at least MIN_APART frames from each other."""
    picked: list[int] = []
    for j in order.tolist():
        if all(abs(int(index[j]) - int(index[p])) >= MIN_APART for p in picked):
            picked.append(j)
            if len(picked) == VARIANTS:
                break
    return picked


def _cluster(
    patches: npt.NDArray[np.uint8], looks: Array, measures: Array, index: npt.NDArray[Any],
    frame: MouthFrame,
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
    n = len(patches)
    centred = looks - looks.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    look = (centred @ vt[:_LOOK_DIMS].T).astype(np.float32)
    look /= max(float(look.std()), 1e-6)
    geo = (measures - measures.mean(0)) / np.maximum(measures.std(0), 1e-6)
    # Shape counts more than look: the clusters are mouth shapes first.
    features = np.hstack([3.0 * geo, look]).astype(np.float32)
    # The lips closed (m, b, p) are brief in speech and a k-means centre drifts towards the
    # nearly closed shapes around them: the most closed frames are a shape of their own.
    opening, width = measures[:, 0], measures[:, 1]
    closed = _spaced(np.argsort(opening, kind="stable"), index)
    k = min(CLUSTERS - 1, n // 3)
    cv2.setRNGSeed(7)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
    _, labels, centres = cv2.kmeans(features, k, np.zeros((n, 1), np.int32), criteria, 4,
                                    cv2.KMEANS_PP_CENTERS)
    labels = labels.ravel()
    labels[closed] = k
    k += 1
    chosen: list[int] = list(closed)
    for c in range(k - 1):
        members = np.flatnonzero(labels == c)
        dist = np.linalg.norm(features[members] - centres[c], axis=1)
        chosen.extend(_spaced(members[np.argsort(dist)], index))
    mask = mask_for(frame)
    ring = (mask > 0.05) & (mask < 0.5)
    sel = np.array(chosen)
    arrays: dict[str, npt.NDArray[Any]] = {
        "patches": patches[sel],
        "open": opening[sel],
        "width": width[sel],
        "cluster": labels[sel].astype(np.int16),
        "look": look[sel],
        "ring": np.stack([patches[j][ring].mean(0) for j in chosen]).astype(np.float32),
        "source_frame": index[sel].astype(np.int32),
        "mask": mask,
        # How closed the lips get (the closed shape's mean), how open (95th percentile), and
        # the 5th and 95th percentiles of the width: what the mouth track is scaled to.
        "scale": np.array([opening[closed].mean(), np.percentile(opening, 95),
                           np.percentile(width, 5), np.percentile(width, 95)], np.float32),
        **frame.as_arrays(),
    }
    lo, hi, w_lo, w_hi = (float(x) for x in arrays["scale"])
    summary = {"clusters": int(k), "entries": len(chosen),
               "open_closed_p95": [round(lo, 3), round(hi, 3)],
               "width_p5_p95": [round(w_lo, 3), round(w_hi, 3)]}
    log.info("mouth atlas: %d shapes, %d variants from %d frames (lips apart %.2f..%.2f "
             "half-widths, width %+.0f%%..%+.0f%%)", k, len(chosen), n, lo, hi, 100 * w_lo,
             100 * w_hi)
    return arrays, summary
