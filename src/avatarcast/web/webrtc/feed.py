"""The program, handed from the pacer to the WebRTC peers.

The pacer offers every tick it sent, on its own thread. While nobody watches, that costs a
comparison. While someone does, each tick crosses to the event loop in one
`call_soon_threadsafe`; its audio goes to every audio track as it is, and every `every`-th
frame is scaled down once, on a worker thread, for all the video tracks together. Frame n
keeps its number, so the tracks stamp sound and picture from the one clock the stream has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import cv2
import numpy as np

from ...media.audio import Pcm
from ...media.frames import Frame

log = logging.getLogger(__name__)


class Sink(Protocol):
    def push(self, n: int, data: Frame | Pcm) -> None: ...


def scaled(frame: Frame, width: int) -> Frame:
    """A yuv420p frame (shape (h*3/2, w)) at `width` (even), the height by the aspect (even);
    the frame itself when it is no wider."""
    h, w = frame.shape[0] * 2 // 3, frame.shape[1]
    if w <= width:
        return frame
    sw = width // 2 * 2
    sh = max(2, round(h * sw / w / 2) * 2)
    src, out = np.ascontiguousarray(frame).reshape(-1), np.empty(sh * 3 // 2 * sw, np.uint8)
    area = cv2.INTER_AREA
    out[: sh * sw] = cv2.resize(src[: h * w].reshape(h, w), (sw, sh), interpolation=area).ravel()
    chroma, small = (h // 2) * (w // 2), (sh // 2) * (sw // 2)
    for i in range(2):  # U, then V
        plane = src[h * w + i * chroma : h * w + (i + 1) * chroma].reshape(h // 2, w // 2)
        at = sh * sw + i * small
        out[at : at + small] = cv2.resize(plane, (sw // 2, sh // 2), interpolation=area).ravel()
    return out.reshape(sh * 3 // 2, sw)


class ProgramFeed:
    """`offer` runs on the pacer thread; everything else on the event loop."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, stream_fps: int, fps: int,
                 width: int) -> None:
        self._loop = loop
        self.every = max(1, round(stream_fps / max(1, fps)))
        self._width = width
        self._audio: set[Sink] = set()
        self._video: set[Sink] = set()
        # Frames waiting to be scaled: two at most; past that the scaler is behind and the
        # oldest goes (the viewers see a frame less, never a growing delay).
        self._frames: asyncio.Queue[tuple[int, Frame]] = asyncio.Queue(maxsize=2)
        self._scaler: asyncio.Task[None] | None = None
        self.watching = False  # read by the pacer thread on every tick

    def offer(self, n: int, frame: Frame, audio: Pcm) -> None:
        """A pacer tap: while someone watches, the tick goes to the event loop."""
        if not self.watching:
            return
        keep = frame if n % self.every == 0 else None
        self._loop.call_soon_threadsafe(self._arrive, n, keep, audio)

    def add(self, *, audio: Sink | None, video: Sink | None) -> None:
        if audio is not None:
            self._audio.add(audio)
        if video is not None:
            self._video.add(video)
            if self._scaler is None:
                self._scaler = self._loop.create_task(self._scale(), name="webrtc-scaler")
                self._scaler.add_done_callback(self._scaler_done)
        self.watching = bool(self._audio or self._video)

    def remove(self, *sinks: Sink) -> None:
        for sink in sinks:
            self._audio.discard(sink)
            self._video.discard(sink)
        self.watching = bool(self._audio or self._video)

    def _arrive(self, n: int, frame: Frame | None, audio: Pcm) -> None:
        for sink in self._audio:
            sink.push(n, audio)
        if frame is None or not self._video:
            return
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait((n, frame))

    async def _scale(self) -> None:
        while True:
            n, frame = await self._frames.get()
            small = await asyncio.to_thread(scaled, frame, self._width)
            for sink in self._video:
                sink.push(n, small)

    def _scaler_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("the WebRTC view's scaler died; its viewers get no picture", exc_info=exc)

    async def aclose(self) -> None:
        self.watching = False
        self._audio.clear()
        self._video.clear()
        if self._scaler is not None:
            self._scaler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scaler
            self._scaler = None
