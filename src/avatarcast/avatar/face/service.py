"""Runs the configured animator on its own thread, measures how fast it renders, and holds it
to its contract: every frame the right size, as many frames as asked, no silence longer than
`face.timeout_s`. An animator that breaks it fails the utterance, never the stream (a frame of
the wrong size written to FFmpeg's raw input would shift every frame after it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing

import numpy as np

from ...infra.threads import iterate_in_thread
from ...media.audio import Pcm
from ...media.frames import Frame
from ...settings import FaceSettings
from ..runtime import Avatar
from .base import FaceAnimator
from .mouthtrack import MouthTrack


def make_animator(name: str, settings: FaceSettings, fps: int) -> FaceAnimator:
    """The animator `name` (as chosen by select.choose); backends import lazily."""
    if name == "lite":
        from .lite import LiteAnimator

        return LiteAnimator(fps)
    if name == "remote":
        from .remote import RemoteAnimator

        assert settings.remote_url is not None  # settings require it
        return RemoteAnimator(settings.remote_url, fps, settings.remote_timeout_s)
    if name == "musetalk":
        from .musetalk.animator import MuseTalkAnimator

        return MuseTalkAnimator(settings, fps)
    from .still import StillAnimator

    return StillAnimator()


class FaceError(RuntimeError):
    """The animator failed its contract for one utterance; the message is dead-lettered."""


class FaceService:
    """Owned by the event loop; the animator runs on the service's one thread."""

    def __init__(self, animator: FaceAnimator, *, timeout_s: float = 30.0) -> None:
        self.animator = animator
        self._timeout = timeout_s
        self._executor = self._new_executor()
        self._shape: tuple[int, ...] | None = None
        # Frames per second the animator sustains; unknown until measured, and assumed fast.
        self.render_fps = float("inf")

    def _new_executor(self) -> ThreadPoolExecutor:
        # At the pacer's priority, as every thread of the daemon (see infra/threads.py).
        return ThreadPoolExecutor(1, thread_name_prefix=f"face-{self.animator.name}")

    async def start(self, avatar: Avatar) -> None:
        self._shape = avatar.idle.frames[0].shape
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self.animator.load, avatar
        )

    async def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> AsyncGenerator[list[Frame], None]:
        """Batches as they are rendered; closing it early stops the animator at its next."""
        t = time.perf_counter()
        asked, made = len(cycle_indices), 0
        frames = iterate_in_thread(
            self._executor, lambda: self.animator.render(audio_16k, cycle_indices, mouth)
        )
        async with aclosing(frames):
            while True:
                try:
                    async with asyncio.timeout(self._timeout):
                        batch = await anext(frames)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    self._abandon_thread()
                    raise FaceError(f"the {self.animator.name} animator rendered nothing for "
                                    f"{self._timeout:.0f} s (face.timeout_s)") from None
                made += len(batch)
                self._check(batch, made, asked)
                now = time.perf_counter()
                self._measure(len(batch), now - t)
                t = now
                yield batch
        if made != asked:
            raise FaceError(f"the {self.animator.name} animator rendered {made} frames "
                            f"for {asked}")

    def _check(self, batch: list[Frame], made: int, asked: int) -> None:
        if made > asked:
            raise FaceError(f"the {self.animator.name} animator rendered more frames than the "
                            f"{asked} asked for")
        for frame in batch:
            if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8
                    and frame.shape == self._shape):
                got = (f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray)
                       else type(frame).__name__)
                raise FaceError(f"the {self.animator.name} animator returned a frame of {got}; "
                                f"expected {self._shape} uint8")

    def _abandon_thread(self) -> None:
        """A hung animator keeps its thread; the next utterance gets a new one."""
        old, self._executor = self._executor, self._new_executor()
        old.shutdown(wait=False, cancel_futures=True)

    def _measure(self, frames: int, seconds: float) -> None:
        if seconds <= 1e-6:
            return
        rate = frames / seconds
        self.render_fps = rate if self.render_fps == float("inf") else (
            0.7 * self.render_fps + 0.3 * rate
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        await self.animator.aclose()
