"""The avatar as the daemon airs it: the cached cycle letterboxed to the output size, as
yuv420p frames, with every frame's face geometry moved into output pixels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ..media.frames import Frame
from ..media.idle import PAD_RGB, IdleCycle
from ..media.picture import paste
from . import framing
from .alive.rig import FaceRig
from .prepare import PreparedAvatar

log = logging.getLogger(__name__)


@dataclass
class FaceTrack:
    """Per cycle frame, in output pixels."""

    landmarks: npt.NDArray[np.float32]  # (N, 468, 3)
    crop_boxes: npt.NDArray[np.float32]  # (N, 4)
    lower_face_masks: npt.NDArray[np.uint8]  # (N, 256, 256), crop space


@dataclass
class Avatar:
    idle: IdleCycle
    faces: FaceTrack | None = None  # None: a plain idle source without face geometry
    rgb: list[npt.NDArray[np.uint8]] | None = None  # the cycle in RGB, output size
    directory: Path | None = None  # the cache, where animators may keep their own data
    # The person's masks at the segmentation model's size, one a cycle frame (person.py),
    # and where the cached frames lie in the output picture (x, y, w, h): a background is
    # put behind the person without running the model again.
    person: npt.NDArray[np.uint8] | None = None
    placed: tuple[int, int, int, int] | None = None


def placement(w: int, h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Where a w x h frame lies in a width x height picture, as `letterbox` draws it: x, y
    (negative: cut), and its size there."""
    scale = framing.fit_scale(w, h, width, height)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return (width - nw) // 2, (height - nh) // 2, nw, nh


def letterbox(
    rgb: npt.NDArray[np.uint8], width: int, height: int
) -> tuple[npt.NDArray[np.uint8], float, tuple[int, int]]:
    """The frame drawn in a width x height picture: scaled to fill it when its aspect is the
    picture's but for rounding (a face box; what is over is cut, a pixel or two), else
    letterboxed. The scale, and the frame's top-left corner in the picture."""
    h, w = rgb.shape[:2]
    ox, oy, nw, nh = placement(w, h, width, height)
    scale = nw / w
    # Scaled up, a sharper filter than bilinear: a face box from a small source is scaled
    # up two or three times, and bilinear blurs the eyes and lips.
    interp = cv2.INTER_AREA if scale <= 1 else cv2.INTER_LANCZOS4
    scaled = cv2.resize(rgb, (nw, nh), interpolation=interp)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = PAD_RGB
    paste(out, scaled, ox, oy)
    # Effective per-axis scale after rounding; landmarks follow the pixels exactly.
    return out, nw / w, (ox, oy)


def rgb_to_frame(rgb: npt.NDArray[np.uint8]) -> Frame:
    """RGB to yuv420p (BT.601, limited range, as FFmpeg's default conversion)."""
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)


def for_output(prepared: PreparedAvatar, width: int, height: int, keep_rgb: bool,
               alive: bool = False) -> Avatar:
    """The prepared avatar fitted to the output; `alive`: with the face rig that moves it on
    air (avatar/alive)."""
    frames: list[Frame] = []
    rgbs: list[npt.NDArray[np.uint8]] = []
    scale, offset = 1.0, (0, 0)
    for rgb in prepared.frames:
        boxed, scale, offset = letterbox(rgb, width, height)
        frames.append(rgb_to_frame(boxed))
        if keep_rgb:
            rgbs.append(boxed)
    shift = np.array(offset, np.float32)
    lm = prepared.landmarks.copy()
    lm[..., :2] = lm[..., :2] * scale + shift
    lm[..., 2] *= scale
    boxes = prepared.crop_boxes * scale + np.tile(shift, 2)
    faces = FaceTrack(lm, boxes.astype(np.float32), prepared.lower_face_masks)
    sharp = framing.sharpness(prepared.manifest, width, height)
    log.log(
        logging.WARNING if sharp.soft else logging.INFO, "avatar %s: %d frame(s) fitted to "
        "%dx%d: %s", prepared.manifest.get("id"), len(frames), width, height, sharp.text,
    )
    rig = FaceRig(lm, width, height) if alive else None
    h, w = prepared.frames[0].shape[:2]
    return Avatar(IdleCycle(frames, rig), faces, rgbs or None, prepared.directory,
                  prepared.person, placement(w, h, width, height))
