"""The console's picture: now and then a frame the pacer sent, as a JPEG.

The pacer offers every frame it sent; the tap keeps a reference to one every `1/fps` seconds,
and only while someone has looked in the last few seconds, so an unwatched console costs a
comparison per frame. Encoding happens when a viewer asks, off the pacer thread, once per kept
frame however many viewers there are.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from ...media.audio import Pcm
from ...media.frames import Frame

WATCHED_FOR_S = 5.0  # a viewer counts as watching this long after its last request
PREVIEW_WIDTH = 640


class PreviewTap:
    """`offer` is called on the pacer thread; `jpeg` on the event loop's worker threads."""

    def __init__(self, fps: int, stream_fps: int, height: int) -> None:
        self._every = max(1, stream_fps // max(1, fps))
        self._height = height
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._number = -1
        self._encoded: tuple[int, bytes] | None = None
        self._watched_until = 0.0
        self.interval_s = self._every / stream_fps

    def offer(self, n: int, frame: Frame, audio: Pcm) -> None:
        """A pacer tap: the picture only (the console has no sound)."""
        if n % self._every or time.monotonic() > self._watched_until:
            return
        with self._lock:
            self._frame, self._number = frame, n

    def watched(self) -> None:
        self._watched_until = time.monotonic() + WATCHED_FOR_S

    def jpeg(self) -> tuple[int, bytes] | None:
        """(frame number, JPEG) of the latest kept frame, or None before the first."""
        self.watched()
        with self._lock:
            frame, n = self._frame, self._number
            if self._encoded is not None and self._encoded[0] == n:
                return self._encoded
        if frame is None:
            return None
        bgr = cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420)
        h, w = bgr.shape[:2]
        if w > PREVIEW_WIDTH:
            bgr = cv2.resize(bgr, (PREVIEW_WIDTH, round(h * PREVIEW_WIDTH / w)),
                             interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 75])
        if not ok:
            return None
        encoded = (n, np.asarray(buf).tobytes())
        with self._lock:
            self._encoded = encoded
        return encoded
