"""The still animator: the speech airs over the idle cycle with the mouth unchanged
(radio-style streams). Frames are the idle frames themselves, shared, not copied."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ...media.audio import Pcm
from ...media.frames import Frame
from ...media.idle import IdleCycle
from ..runtime import Avatar
from .mouthtrack import MouthTrack


class StillAnimator:
    name = "still"
    batch = 256

    def __init__(self) -> None:
        self._idle: IdleCycle | None = None

    def load(self, avatar: Avatar) -> None:
        self._idle = avatar.idle

    async def aclose(self) -> None:
        self._idle = None

    def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[list[Frame]]:
        if self._idle is None:
            raise RuntimeError("StillAnimator.render before load")
        frames = self._idle.frames
        for i in range(0, len(cycle_indices), self.batch):
            yield [frames[c] for c in cycle_indices[i : i + self.batch]]
