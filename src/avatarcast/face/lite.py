"""The lite animator: the prepared avatar's jaw and lips moved by the speech, on the CPU.

Mouth shapes come from the audio (mouth.py); each frame is the idle frame at its cycle index,
warped (warp.py). Closed-mouth frames are the idle frames themselves, so silence inside an
utterance and the cuts in and out are pixel-identical to idle.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..avatar.runtime import Avatar
from ..onair.audio import Pcm
from ..onair.frames import Frame
from .base import ANIMATOR_RATE
from .mouth import MouthTuning, mouth_shapes
from .warp import FaceGeometry, WarpTuning, warp


class LiteAnimator:
    name = "lite"
    batch = 8

    def __init__(
        self, fps: int, mouth: MouthTuning | None = None, shape: WarpTuning | None = None
    ) -> None:
        self._fps = fps
        self._mouth = mouth or MouthTuning()
        self._shape = shape or WarpTuning()
        self._avatar: Avatar | None = None
        self._geometry: list[FaceGeometry] = []

    def load(self, avatar: Avatar) -> None:
        if avatar.faces is None:
            raise ValueError("the lite animator needs a prepared avatar (face landmarks)")
        first = avatar.idle.frames[0]
        height, width = first.shape[0] * 2 // 3, first.shape[1]
        self._geometry = [
            FaceGeometry(lm, width, height, self._shape) for lm in avatar.faces.landmarks
        ]
        self._avatar = avatar

    def render(self, audio_16k: Pcm, cycle_indices: Sequence[int]) -> Iterator[list[Frame]]:
        if self._avatar is None:
            raise RuntimeError("LiteAnimator.render before load")
        frames = self._avatar.idle.frames
        opening, width = mouth_shapes(
            audio_16k, len(cycle_indices), self._fps, ANIMATOR_RATE, self._mouth
        )
        # Each rendered stretch starts and ends with the mouth closed: its first and last
        # frames are then the idle frames themselves, and the cuts cannot show.
        if len(opening):
            opening[0] = opening[-1] = 0.0
        batch: list[Frame] = []
        for k, c in enumerate(cycle_indices):
            batch.append(
                warp(frames[c], self._geometry[c], float(opening[k]), float(width[k]), self._shape)
            )
            if len(batch) == self.batch:
                yield batch
                batch = []
        if batch:
            yield batch
