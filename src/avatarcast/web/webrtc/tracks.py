"""aiortc media tracks that send the program: one peer's picture and sound.

aiortc pulls: its sender awaits `recv()`, encodes the frame on a worker thread, and sends it.
The feed pushes every tick here; a short queue absorbs jitter, and when the encoder falls
behind the oldest item goes, so the delay stays bounded. Nothing is queued before the peer's
first `recv()` (before the connection is up): old frames would only add delay.

Time stamps come from the stream's frame number: picture n at n/fps, sound at n * spf samples,
so the browser lines them up as the stream does.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from ...media.audio import Pcm
from ...media.frames import Frame

VIDEO_DEPTH = 8  # frames (half a second at 15 fps)
AUDIO_DEPTH = 30  # ticks (a second at 30 fps)


class _Queued(MediaStreamTrack):
    """Owned by the event loop."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self._queue: asyncio.Queue[tuple[int, np.ndarray]] = asyncio.Queue(maxsize=depth)
        self.started = False
        self.dropped = 0

    def push(self, n: int, data: Frame | Pcm) -> None:
        if not self.started or self.readyState != "live":
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait((n, data))

    async def _next(self) -> tuple[int, np.ndarray]:
        if self.readyState != "live":
            raise MediaStreamError
        self.started = True
        return await self._queue.get()


class ProgramVideo(_Queued):
    kind = "video"

    def __init__(self, stream_fps: int) -> None:
        super().__init__(VIDEO_DEPTH)
        self._time_base = Fraction(1, stream_fps)

    async def recv(self) -> VideoFrame:
        n, yuv = await self._next()
        frame = VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = n, self._time_base
        return frame


class ProgramAudio(_Queued):
    kind = "audio"

    def __init__(self, sample_rate: int) -> None:
        super().__init__(AUDIO_DEPTH)
        self._rate = sample_rate
        self._time_base = Fraction(1, sample_rate)

    async def recv(self) -> AudioFrame:
        n, pcm = await self._next()
        # Both channels as they are: aiortc's Opus is stereo, and the mono-to-stereo upmix of
        # its resampler would lower the level by 3 dB.
        stereo = np.repeat(pcm, 2).reshape(1, -1)
        frame = AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = self._rate
        frame.pts, frame.time_base = n * pcm.size, self._time_base
        return frame
