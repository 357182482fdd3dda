"""A replaced background (issue 30): the person kept where the segmentation model finds them
(avatar/segment.py; the model's answers kept in the avatar's cache, avatar/person.py), with a
solid colour (a key colour for OBS chroma keying: #00b140), a picture or a looping video
behind.

A still background is put into the frames of the idle cycle once, when an avatar is loaded
for the output: the animators draw the mouth over those frames and the motion moves them, so
the mouth, the blinks and the head stay inside the person and every output shows the same
picture. A video cannot be put in once: the frames keep their own background and carry the
person's mask instead (media/idle.py `Behind`), and the scene puts the video's frame behind
the person on each tick, after the motion has moved the frame and its mask alike."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from ..media.frames import mask_frame
from ..media.idle import Behind, IdleCycle, Playing
from . import person
from .cache import AvatarCacheError
from .runtime import Avatar, rgb_to_frame
from .segment import Segmenter, soft_edge

log = logging.getLogger(__name__)


class Backdrop(Protocol):
    """What is put behind the person: the scene's background (playout/scene/spec.py): a
    picture at the output's size (media/picture.py), or a video to play (media/loop.py)."""

    @property
    def video(self) -> Path | None: ...

    def picture(self, width: int, height: int) -> npt.NDArray[np.uint8]: ...


def _rgb(avatar: Avatar, i: int) -> npt.NDArray[np.uint8]:
    if avatar.rgb is not None:
        return avatar.rgb[i]
    return np.asarray(cv2.cvtColor(avatar.idle.frames[i], cv2.COLOR_YUV2RGB_I420), np.uint8)


def person_masks(avatar: Avatar) -> Iterator[npt.NDArray[np.uint8]]:
    """The person's mask (H x W, 0-255) over each frame of the cycle, in order: from the
    answers kept in the avatar's cache (made and kept there if missing), or, for a plain idle
    source that has no cache, from the model run on the frames themselves."""
    rows, width = avatar.idle.frames[0].shape
    height = rows * 2 // 3
    found, placed = avatar.person, avatar.placed
    if found is None and avatar.directory is not None and placed is not None:
        try:
            found = person.ensure(avatar.directory, avatar.idle.length)
        except AvatarCacheError as exc:
            log.warning("the person's masks cannot come from the cache (%s); made from the "
                        "frames", exc)
    if found is not None and placed is not None:
        for one in found:
            yield soft_edge(one, width, height, placed)
        return
    segment = Segmenter()
    for i in range(avatar.idle.length):
        yield segment.mask(_rgb(avatar, i))


def with_background(avatar: Avatar, background: Backdrop) -> Avatar:
    """The avatar with its frames' background replaced by a still one (a new Avatar; the
    frames it was given are left as they are). Blocking: run it off the event loop."""
    t = time.monotonic()
    frames, rgbs = [], []
    behind: npt.NDArray[np.float32] | None = None
    for i, mask in enumerate(person_masks(avatar)):
        rgb = _rgb(avatar, i)
        if behind is None:
            behind = background.picture(rgb.shape[1], rgb.shape[0]).astype(np.float32)
        m = mask[..., None].astype(np.float32) / 255
        out = np.round(rgb * m + behind * (1 - m)).astype(np.uint8)
        frames.append(rgb_to_frame(out))
        if avatar.rgb is not None:
            rgbs.append(out)
    log.info("background replaced on %d frame(s) in %.1f s", len(frames),
             time.monotonic() - t)
    return replace(avatar, idle=IdleCycle(frames, avatar.idle.rig), rgb=rgbs or None)


def with_video(avatar: Avatar, video: Playing) -> Avatar:
    """The avatar with `video` to play behind the person (a new Avatar whose cycle carries
    the person's masks; its frames are the given ones). Blocking: run it off the event loop."""
    t = time.monotonic()
    masks = [mask_frame(m) for m in person_masks(avatar)]
    log.info("the person's masks made for a moving background on %d frame(s) in %.1f s",
             len(masks), time.monotonic() - t)
    idle = IdleCycle(avatar.idle.frames, avatar.idle.rig, Behind(masks, video))
    return replace(avatar, idle=idle)
