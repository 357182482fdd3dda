"""The lite animator: the prepared avatar's own lips, teeth and jaw moved by the mouth track,
on the CPU.

The track (a pose per frame, from the speech's phoneme timings or its sound) drives the warp of
each frame's idle picture at its cycle index (warp.py). Frames at rest are the idle frames
themselves, so silence inside an utterance and the cuts in and out are pixel-identical to idle.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..avatar.runtime import Avatar
from ..onair.audio import Pcm
from ..onair.frames import Frame
from .lipgeometry import LipGeometry
from .mouthtrack import MouthTrack
from .visemes import Pose
from .warp import REST, WarpTuning, warp

STATIC_BUDGET_BYTES = 96 * 2**20


class LiteAnimator:
    name = "lite"
    batch = 8

    def __init__(self, fps: int, shape: WarpTuning | None = None) -> None:
        self._fps = fps
        self._shape = shape or WarpTuning()
        self._avatar: Avatar | None = None
        self._geometry: list[LipGeometry] = []

    def load(self, avatar: Avatar) -> None:
        if avatar.faces is None:
            raise ValueError("the lite animator needs a prepared avatar (face landmarks)")
        self._geometry = [
            LipGeometry(lm, frame, self._shape.jaw_drop)
            for lm, frame in zip(avatar.faces.landmarks, avatar.idle.frames, strict=True)
        ]
        # The warp keeps what it derives from each frame's geometry (about 60 bytes a pixel of
        # the mouth region) when that fits the budget for the whole cycle: always for a
        # portrait, for short videos at 720p; else it is derived again for every frame.
        x0, y0, x1, y1 = self._geometry[0].roi
        need = len(self._geometry) * (x1 - x0) * (y1 - y0) * 60
        for g in self._geometry:
            g.keep_static = need <= STATIC_BUDGET_BYTES
        self._avatar = avatar

    def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[list[Frame]]:
        if self._avatar is None:
            raise RuntimeError("LiteAnimator.render before load")
        frames = self._avatar.idle.frames
        last = len(cycle_indices) - 1
        batch: list[Frame] = []
        for k, c in enumerate(cycle_indices):
            # Each rendered stretch starts and ends at rest: its first and last frames are
            # then the idle frames themselves, and the cuts cannot show.
            pose = REST if k in (0, last) else Pose(
                float(mouth.jaw[k]), float(mouth.spread[k]), float(mouth.press[k]),
                float(mouth.tuck[k]))
            batch.append(warp(frames[c], self._geometry[c], pose, self._shape))
            if len(batch) == self.batch:
                yield batch
                batch = []
        if batch:
            yield batch
