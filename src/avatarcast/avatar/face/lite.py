"""The lite animator: the talking face on the CPU, driven by the mouth track (a pose per frame,
from the speech's phoneme timings or its sound).

With a mouth atlas (the avatar was prepared with a talking reference) the mouths are real ones
from that reference, chosen and pasted per frame (atlas.py); without one, the idle picture's
own lips, teeth and jaw are moved (warp.py). Frames at rest are the idle frames themselves, so
silence inside an utterance and the cuts in and out are pixel-identical to idle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from ...media.audio import Pcm
from ...media.frames import Frame
from ..runtime import Avatar
from .atlas import MouthAtlas
from .base import growing_batches
from .lipgeometry import LipGeometry
from .mouthtrack import MouthTrack
from .visemes import Pose
from .warp import REST, WarpTuning, warp

log = logging.getLogger(__name__)

STATIC_BUDGET_BYTES = 96 * 2**20


class LiteAnimator:
    name = "lite"
    batch = 8

    def __init__(self, fps: int, shape: WarpTuning | None = None) -> None:
        self._fps = fps
        self._shape = shape or WarpTuning()
        self._avatar: Avatar | None = None
        self._geometry: list[LipGeometry] = []
        self._atlas: MouthAtlas | None = None

    async def aclose(self) -> None:
        self._avatar = None
        self._atlas = None
        self._geometry = []

    def load(self, avatar: Avatar) -> None:
        if avatar.faces is None:
            raise ValueError("the lite animator needs a prepared avatar (face landmarks)")
        self._avatar = avatar
        self._atlas = MouthAtlas.load(avatar.directory)
        if self._atlas is not None:
            self._atlas.attach(avatar.faces.landmarks, avatar.idle.frames)
            log.info("lite animator: mouths from the avatar's atlas (%d variants)",
                     len(self._atlas))
            return
        log.info("lite animator: the still image's own mouth, warped")
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

    @property
    def mouth(self) -> str:
        """"atlas" (real mouths from the avatar's atlas) or "still" (the image's own, warped)."""
        return "atlas" if self._atlas is not None else "still"

    def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[list[Frame]]:
        if self._avatar is None:
            raise RuntimeError("LiteAnimator.render before load")
        if self._atlas is not None:
            yield from growing_batches(self._pasted(self._atlas, cycle_indices, mouth),
                                       self.batch)
            return
        yield from growing_batches(self._warped(cycle_indices, mouth), self.batch)

    def _warped(self, cycle_indices: Sequence[int], mouth: MouthTrack) -> Iterator[Frame]:
        assert self._avatar is not None
        frames = self._avatar.idle.frames
        last = len(cycle_indices) - 1
        for k, c in enumerate(cycle_indices):
            # Each rendered stretch starts and ends at rest: its first and last frames are
            # then the idle frames themselves, and the cuts cannot show.
            pose = REST if k in (0, last) else Pose(
                float(mouth.jaw[k]), float(mouth.spread[k]), float(mouth.press[k]),
                float(mouth.tuck[k]))
            yield warp(frames[c], self._geometry[c], pose, self._shape)

    def _pasted(
        self, atlas: MouthAtlas, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[Frame]:
        assert self._avatar is not None
        frames = self._avatar.idle.frames
        entries = atlas.choose(mouth, cycle_indices)
        alpha = atlas.presence(mouth)
        if len(alpha):
            alpha[0] = alpha[-1] = 0.0  # each stretch starts and ends on the idle frame
        previous: int | None = None
        for k, c in enumerate(cycle_indices):
            entry = int(entries[k])
            yield atlas.paste(frames[c], c, entry, previous, float(alpha[k]))
            previous = entry
