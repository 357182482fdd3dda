"""The animator seam: frames for given idle-cycle indices, from 16 kHz speech, in batches.

Rendering for the cycle indices at which the frames will be shown is what makes cuts in and
out of speech invisible: talking frame k continues idle frame k of the same cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from ...media.audio import Pcm
from ...media.frames import Frame
from ..runtime import Avatar
from .mouthtrack import MouthTrack

ANIMATOR_RATE = 16_000  # what speech-driven face models take


class FaceAnimator(Protocol):
    name: str

    def load(self, avatar: Avatar) -> None:
        """Prepare models and per-avatar data; blocking, run on the animator's thread."""

    def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[list[Frame]]:
        """Yield batches of frames, one per cycle index, in order; audio_16k and the mouth
        track (a pose and a viseme per frame, from the speech's phoneme timings or its sound)
        span exactly len(cycle_indices) frames. Blocking, run on the animator's thread."""
        ...

    async def aclose(self) -> None:
        """Let go of what `load` took (per-avatar data, the fallback's, models kept for this
        animator alone); from the event loop, once its thread takes no more work. Idempotent."""


def growing_batches(frames: Iterable[Frame], most: int) -> Iterator[list[Frame]]:
    """`frames` in batches of 1, 2, 4 … up to `most`: the first frame of a text goes to the
    program as soon as it is drawn (a segment can air from its first frame), and the hand-offs
    after it cost no more than batches of `most`."""
    size, batch = 1, []
    for frame in frames:
        batch.append(frame)
        if len(batch) >= size:
            yield batch
            batch, size = [], min(most, size * 2)
    if batch:
        yield batch
