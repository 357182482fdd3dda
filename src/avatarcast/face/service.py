"""Runs the configured animator on its own thread and measures how fast it renders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing

from ..avatar.runtime import Avatar
from ..infra.threads import background_priority, iterate_in_thread
from ..onair.audio import Pcm
from ..onair.frames import Frame
from ..settings import FaceSettings
from .base import FaceAnimator


def make_animator(name: str, settings: FaceSettings, fps: int) -> FaceAnimator:
    """The animator `name` (as chosen by select.choose); backends import lazily."""
    if name == "lite":
        from .lite import LiteAnimator

        return LiteAnimator(fps)
    if name == "musetalk":
        from .musetalk.animator import MuseTalkAnimator

        return MuseTalkAnimator(settings, fps)
    from .still import StillAnimator

    return StillAnimator()


class FaceService:
    def __init__(self, animator: FaceAnimator) -> None:
        self.animator = animator
        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix=f"face-{animator.name}", initializer=background_priority
        )
        # Frames per second the animator sustains; unknown until measured, and assumed fast.
        self.render_fps = float("inf")

    async def start(self, avatar: Avatar) -> None:
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self.animator.load, avatar
        )

    async def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int]
    ) -> AsyncGenerator[list[Frame], None]:
        """Batches as they are rendered; closing it early stops the animator at its next."""
        t = time.perf_counter()
        frames = iterate_in_thread(
            self._executor, lambda: self.animator.render(audio_16k, cycle_indices)
        )
        async with aclosing(frames):
            async for batch in frames:
                now = time.perf_counter()
                self._measure(len(batch), now - t)
                t = now
                yield batch

    def _measure(self, frames: int, seconds: float) -> None:
        if seconds <= 1e-6:
            return
        rate = frames / seconds
        self.render_fps = rate if self.render_fps == float("inf") else (
            0.7 * self.render_fps + 0.3 * rate
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
