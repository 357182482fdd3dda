"""The remote animator: a face server (`avatarcast serve-face`, on a GPU box for instance)
renders the frames; this side sends the speech and the mouth track and pastes the rectangles
it gets back into its own idle frames (remote_wire.py).

A service that cannot be reached, refuses, answers nothing for `face.remote_timeout_s`, takes
longer than that to send one frame whole, renders slower than real time, or breaks the wire
format (a rectangle that does not fit the frame asked for is refused before its bytes are read)
never stalls the stream nor fails the text: what it has not rendered is rendered here by the
lite animator, for that stretch of speech, and the next one asks the service again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from ...infra.httpretry import server_says
from ...media.audio import Pcm
from ...media.frames import Frame
from .. import cache
from ..runtime import Avatar
from .base import ANIMATOR_RATE
from .lite import LiteAnimator
from .mouthtrack import MouthTrack
from .remote_wire import CONTENT_TYPE, HEADER, apply_patch, check_patch, request_body

log = logging.getLogger(__name__)

BATCH = 8
_GRACE_S = 2.0  # how long a service may run behind real time before it is given up
ERROR_BYTES = 4096  # of an error's body, read for its message (a hostile one may never end)


class RemoteError(Exception):
    pass


class RemoteAnimator:
    name = "remote"
    batch = BATCH

    def __init__(self, url: str, fps: int, timeout_s: float) -> None:
        self._url = url.rstrip("/") + "/v1/render"
        self._fps = fps
        self._timeout = timeout_s
        self._fallback = LiteAnimator(fps)
        self._avatar: Avatar | None = None
        self._id = ""
        self._sha = ""
        self._framing = ""
        self.frames_remote = 0
        self.frames_local = 0

    def load(self, avatar: Avatar) -> None:
        manifest = cache.read_manifest(avatar.directory) if avatar.directory else None
        if manifest is None:
            raise ValueError("the remote animator needs a prepared avatar")
        self._id = str(manifest["id"])
        self._sha = str(manifest.get("source", {}).get("sha256", ""))
        self._framing = cache.framed_as(manifest)
        self._avatar = avatar
        self._fallback.load(avatar)

    async def aclose(self) -> None:
        self._avatar = None
        await self._fallback.aclose()

    def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[list[Frame]]:
        if self._avatar is None:
            raise RuntimeError("RemoteAnimator.render before load")
        n = len(cycle_indices)
        done = 0
        try:
            for batch in self._remote(audio_16k, list(cycle_indices), mouth):
                done += len(batch)
                self.frames_remote += len(batch)
                yield batch
        except RemoteError as exc:
            log.warning("remote face: %s; the lite animator renders frames %d..%d", exc,
                        done, n - 1)
        if done < n:
            self.frames_local += n - done
            start = round(done * ANIMATOR_RATE / self._fps)  # 533.3 samples a frame at 30
            yield from self._fallback.render(audio_16k[start:], cycle_indices[done:],
                                             _tail(mouth, done))

    def _remote(self, audio_16k: Pcm, cycle: list[int], mouth: MouthTrack
                ) -> Iterator[list[Frame]]:
        import httpx

        assert self._avatar is not None
        frames = self._avatar.idle.frames
        rows, width = frames[0].shape
        height = rows * 2 // 3
        body = request_body(self._id, self._sha, width, height, self._fps, cycle, audio_16k,
                            mouth, self._framing)
        timeout = httpx.Timeout(self._timeout, connect=min(2.0, self._timeout))
        started = time.monotonic()
        batch: list[Frame] = []
        failed: RemoteError | None = None
        try:
            with httpx.stream("POST", self._url, json=body, timeout=timeout,
                              headers={"Accept-Encoding": "identity"}) as resp:
                reader = _Reader(resp.iter_raw(), self._timeout)
                if resp.status_code != 200:
                    raise RemoteError(f"{self._url} answered HTTP {resp.status_code}: "
                                      f"{server_says(reader.head(ERROR_BYTES))}")
                if resp.headers.get("Content-Type", "").split(";")[0] != CONTENT_TYPE:
                    raise RemoteError(f"{self._url} did not answer with {CONTENT_TYPE}")
                if resp.headers.get("Content-Encoding", "identity") != "identity":
                    raise RemoteError(f"{self._url} answered with Content-Encoding "
                                      f"{resp.headers['Content-Encoding']}, not the wire format")
                for k, c in enumerate(cycle):
                    reader.start(f"frame {k}")
                    index, x, y, w, h = HEADER.unpack(reader.take(HEADER.size))
                    if index != k:
                        raise RemoteError(f"frame {index} arrived where {k} was due")
                    try:
                        # Before a byte of it is read: a header may announce gigabytes.
                        check_patch(x, y, w, h, width, height)
                        batch.append(apply_patch(frames[c], x, y, w, h,
                                                 reader.take(w * h * 3 // 2)))
                    except ValueError as exc:
                        raise RemoteError(str(exc)) from None
                    if len(batch) == BATCH:
                        yield batch
                        batch = []
                    # Slower than the stream for longer than a moment: give the rest to lite.
                    if time.monotonic() - started > _GRACE_S + (k + 1) / self._fps:
                        raise RemoteError(f"rendering slower than real time ({k + 1} frames "
                                          f"in {time.monotonic() - started:.1f} s)")
        except httpx.HTTPError as exc:  # timeouts, transport and protocol errors
            failed = RemoteError(f"{self._url}: {type(exc).__name__}")
        except RemoteError as exc:
            failed = exc
        if batch:
            yield batch  # what arrived is used, before any fallback
        if failed is not None:
            raise failed


class _Reader:
    """The answer's bytes, taken a count at a time. Each part (a frame: its header and its
    rectangle) must arrive whole within `timeout_s` of its start: a server that trickles
    bytes, each read inside the read timeout, is given up at that deadline (past it by one
    read at most), not never. The time the caller spends between parts does not count."""

    def __init__(self, chunks: Iterator[bytes], timeout_s: float) -> None:
        self._chunks = chunks
        self._timeout = timeout_s
        self._buf = bytearray()
        self._what = "the answer"
        self._by = time.monotonic() + timeout_s

    def start(self, what: str) -> None:
        self._what, self._by = what, time.monotonic() + self._timeout

    def take(self, n: int) -> bytes:
        while len(self._buf) < n:
            if time.monotonic() > self._by:
                raise RemoteError(f"{self._what} did not arrive whole within "
                                  f"{self._timeout:g} s (face.remote_timeout_s)")
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                raise RemoteError("the answer ended before its last frame") from None
        out, self._buf = bytes(self._buf[:n]), self._buf[n:]
        return out

    def head(self, most: int) -> bytes:
        """Up to `most` bytes: fewer when the answer ends or the deadline passes first."""
        try:
            while len(self._buf) < most and time.monotonic() <= self._by:
                self._buf += next(self._chunks)
        except StopIteration:
            pass
        return bytes(self._buf[:most])


def _tail(mouth: MouthTrack, start: int) -> MouthTrack:
    return MouthTrack(mouth.jaw[start:], mouth.spread[start:], mouth.press[start:],
                      mouth.tuck[start:], mouth.viseme[start:])


