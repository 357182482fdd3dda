"""A head-and-shoulders shot of the bundled portrait at 960x540 (as `avatar.framing` makes it),
its landmarks and its rig, shared by the drawing tests."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from avatarcast.avatar.alive.rig import FaceRig
from avatarcast.avatar.runtime import rgb_to_frame
from avatarcast.avatar.track import FaceTracker
from avatarcast.media.frames import Frame

from ...faces import PORTRAIT

W, H = 960, 540


@dataclass
class Shot:
    rgb: npt.NDArray[np.uint8]
    frame: Frame
    landmarks: npt.NDArray[np.float32]
    rig: FaceRig
    tracker: FaceTracker

    def landmarks_of(self, frame: Frame) -> npt.NDArray[np.float32]:
        found = self.tracker.find(cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420))
        assert found is not None
        return found


@pytest.fixture(scope="package")
def shot() -> Shot:
    src = cv2.cvtColor(cv2.imread(str(PORTRAIT)), cv2.COLOR_BGR2RGB)
    tracker = FaceTracker()
    lm = tracker.find(src)
    assert lm is not None
    face = float(lm[152, 1] - lm[52, 1])
    h = int(face / 0.36)
    w = h * W // H
    top = int(lm[52, 1] - 0.27 * h)
    left = int(np.clip(lm[1, 0] - w / 2, 0, src.shape[1] - w))
    rgb = cv2.resize(src[top:top + h, left:left + w], (W, H), interpolation=cv2.INTER_CUBIC)
    found = tracker.find(rgb)
    assert found is not None
    return Shot(rgb, rgb_to_frame(rgb), found, FaceRig(found[None], W, H), tracker)
