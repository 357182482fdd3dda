"""A replaced background (issue 30): the person kept where the segmentation model finds them
(avatar/segment.py), a solid colour (a key colour for OBS chroma keying: #00b140) or a picture
behind. Done once, when an avatar is loaded for the output, on every frame of its idle cycle:
the animators draw the mouth over those frames and the motion moves them, so the mouth, the
blinks and the head stay inside the person and every output shows the same picture."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from ..media.idle import IdleCycle
from .runtime import Avatar, rgb_to_frame
from .segment import Segmenter

log = logging.getLogger(__name__)


class Backdrop(Protocol):
    """What is put behind the person: the scene's background (playout/scene/spec.py; a
    picture at the output's size, media/picture.py)."""

    def picture(self, width: int, height: int) -> npt.NDArray[np.uint8]: ...


def with_background(avatar: Avatar, background: Backdrop) -> Avatar:
    """The avatar with its frames' background replaced (a new Avatar; the frames it was given
    are left as they are). Blocking: run it off the event loop."""
    t = time.monotonic()
    segment = Segmenter()
    frames, rgbs = [], []
    behind: npt.NDArray[np.float32] | None = None
    for i, frame in enumerate(avatar.idle.frames):
        rgb = (avatar.rgb[i] if avatar.rgb is not None else
               np.asarray(cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420), np.uint8))
        if behind is None:
            behind = background.picture(rgb.shape[1], rgb.shape[0]).astype(np.float32)
        m = segment(rgb)[..., None]
        out = np.round(rgb * m + behind * (1 - m)).astype(np.uint8)
        frames.append(rgb_to_frame(out))
        if avatar.rgb is not None:
            rgbs.append(out)
    log.info("background replaced on %d frame(s) in %.1f s", len(frames),
             time.monotonic() - t)
    return replace(avatar, idle=IdleCycle(frames, avatar.idle.rig), rgb=rgbs or None)
