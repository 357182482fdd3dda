"""The scene's looping video background (issue 30): a video file played forever behind the
avatar, scaled to cover the output and cropped in the middle. Unlike the idle source (idle.py)
it is never held in memory: FFmpeg decodes it as it is shown, a few frames ahead, into a
bounded queue that a reader thread fills and the pacer thread takes from without waiting. If
FFmpeg dies the thread restarts it, and the picture holds on its last frame meanwhile.

FFmpeg loops the file itself (-stream_loop -1) and keeps the timestamps running across the
seam, so the fps filter sees one continuous stream: a 1 s clip of 10 frames at 10 fps gives
exactly 10 frames a loop, none repeated or dropped at the wrap (FFmpeg 5.1, with FFV1, H.264,
MJPEG and VP8 sources, and with an audio track longer than the video); no flag is needed."""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import select
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

import numpy as np

from ..infra.errors import UserError
from .frames import Frame, blank

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a waiting thread looks at close/retire
STALL_S = 10.0  # FFmpeg silent this long while we wait for a frame: treated as dead
BACKOFF_S, MAX_BACKOFF_S = 0.5, 5.0
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux's, in Python 3.10+


class LoopError(UserError):
    """The video cannot be played; the text says why (FFmpeg's last line)."""


def _reap(proc: subprocess.Popen[bytes]) -> None:
    # Our end of the pipe closes first: an FFmpeg blocked writing to a full pipe does not see
    # SIGTERM (the write restarts), but it stops on the broken pipe.
    if proc.stdout is not None:
        proc.stdout.close()
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drain(stream: IO[bytes], tail: deque[str]) -> None:
    for raw in stream:  # ends when FFmpeg exits; keeps only the last lines
        line = raw.decode(errors="replace").strip()
        if line:
            tail.append(line)
    stream.close()


def _widen(fd: int, size: int) -> None:
    """A pipe as large as a frame, as far as the system allows (1 MiB by default): a frame
    in a few reads instead of one per 64 KiB."""
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        fcntl.fcntl(fd, F_SETPIPE_SZ, min(size, limit))
    except (OSError, ValueError):
        pass  # not Linux, or refused: the default size works, with more reads


class LoopingVideo:
    def __init__(self, path: Path, width: int, height: int, fps: int, *,
                 ffmpeg: str = "ffmpeg", ahead: int = 4, idle_close_s: float = 2.0) -> None:
        self.path, self.width, self.height, self.fps = path, width, height, fps
        self.idle_close_s = idle_close_s
        vf = (f"fps={fps},scale={width}:{height}:force_original_aspect_ratio=increase,"
              f"crop={width}:{height},setsar=1")
        self._cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
                     "-stream_loop", "-1", "-i", str(path), "-an", "-vf", vf,
                     "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=max(1, ahead))
        # The frames are read into a ring of buffers made once, each handed out read-only:
        # when one is filled again, the queue holds at most `ahead` newer ones and the pacer
        # shows the one before them (the last `at` returned), so it is neither queued nor
        # shown (in the daemon a new frame-sized block a frame is an mmap, zeroed, unmapped).
        self._ring = [np.empty((height * 3 // 2, width), np.uint8)
                      for _ in range(max(1, ahead) + 3)]
        self._filled = 0
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._retired = False
        self._last_call = time.monotonic()
        self._n: int | None = None
        self._shown: Frame = blank(width, height)
        self.late = 0  # ticks that found no new frame ready
        self.restarts = 0  # decoder restarts after it died
        self.failed: str | None = None  # why the decoder is down now
        self.closed = False

    def start(self, timeout_s: float = 10.0) -> None:
        """Blocking: start the decoder and wait for its first frame, or raise LoopError."""
        if self._thread is not None:
            raise RuntimeError("LoopingVideo.start called twice")
        if not self.path.is_file():
            raise LoopError(f"looping video not found: {self.path}")
        self._thread = threading.Thread(target=self._run, name="loop", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._first.wait(0.05):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                reason = self.failed or f"no frame within {timeout_s:g} s"
                self.close()
                raise LoopError(f"cannot play looping video {self.path}: {reason}")
        log.info("looping video %s started", self.path)

    def at(self, n: int) -> Frame:
        """The frame for tick n (read-only), never waiting: n - previous n frames on, as far
        as they are decoded; the last one shown again when none is. It is the pacer's for
        this tick: its buffer is filled again some frames later."""
        self._last_call = time.monotonic()
        prev = self._n
        if prev is not None and (n <= prev or self._stop.is_set()):
            return self._shown  # the same tick again, or closed: the last frame holds
        self._n = n
        got: Frame | None = None
        for _ in range(1 if prev is None else n - prev):  # skip dropped ticks' frames
            try:
                got = self._queue.get_nowait()
            except queue.Empty:
                break
        if got is None:
            self.late += 1
            return self._shown
        self._shown = got
        return got

    def retire(self) -> None:
        """Close by itself once `at` has not been called for idle_close_s from now."""
        self._last_call = time.monotonic()
        self._retired = True

    def close(self) -> None:
        """Blocking: stop FFmpeg and the thread now. Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        if self._proc is not None:
            _reap(self._proc)  # normally already done by the thread
        self.closed = True

    def _done(self) -> bool:
        if self._stop.is_set():
            return True
        if self._retired and time.monotonic() - self._last_call > self.idle_close_s:
            log.info("looping video %s: retired and unused, closing", self.path)
            self._stop.set()
            return True
        return False

    def _run(self) -> None:
        backoff = BACKOFF_S
        try:
            while not self._done():
                try:
                    flowed, reason = self._play_once()
                except Exception as e:
                    log.exception("looping video %s: decoder thread failed", self.path)
                    flowed, reason = False, f"decoder failed: {e}"
                if self._done():
                    break
                if not self._first.is_set():
                    self.failed = reason  # start() reports it; no restart
                    break
                if flowed:
                    backoff = BACKOFF_S
                if reason != self.failed:
                    log.warning("looping video %s: FFmpeg stopped (%s), restarting in %g s",
                                self.path, reason, backoff)
                self.failed = reason
                until = time.monotonic() + backoff
                while time.monotonic() < until and not self._done():
                    self._stop.wait(POLL_S)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                if not self._done():
                    self.restarts += 1
        finally:
            self._stop.set()
            self.closed = True

    def _play_once(self) -> tuple[bool, str]:
        """Run FFmpeg once, queueing its frames until it ends or we stop: (frames came, why)."""
        proc = subprocess.Popen(self._cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0)
        self._proc = proc
        tail: deque[str] = deque(maxlen=4)
        assert proc.stdout is not None and proc.stderr is not None
        drain = threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True)
        drain.start()
        flowed, why = False, ""
        try:
            _widen(proc.stdout.fileno(), self._ring[0].nbytes)
            while True:
                buf = self._ring[self._filled % len(self._ring)]
                why = self._read_frame(proc.stdout.fileno(), buf.data.cast("B"))
                if why or not self._put(buf):
                    break
                self._filled += 1
                if not flowed:
                    flowed = True
                    if self.failed is not None:
                        log.info("looping video %s: frames flow again", self.path)
                    self.failed = None
                    self._first.set()
        finally:
            _reap(proc)
            drain.join(1.0)
        if why == "ended":
            why = tail[-1] if tail else f"FFmpeg exited with code {proc.returncode}"
        return flowed, why

    def _read_frame(self, fd: int, view: memoryview) -> str:
        """Fill view from FFmpeg's pipe: "" when done, else why not ("stopped", "ended", ...)."""
        got, quiet_since = 0, time.monotonic()
        while got < len(view):
            if self._done():
                return "stopped"
            if not select.select([fd], [], [], POLL_S)[0]:
                if time.monotonic() - quiet_since > STALL_S:
                    return f"FFmpeg gave no frame for {STALL_S:g} s"
                continue
            n = os.readv(fd, [view[got:]])
            if n == 0:
                return "ended"
            got, quiet_since = got + n, time.monotonic()
        return ""

    def _put(self, buf: Frame) -> bool:
        out = buf.view()
        out.flags.writeable = False  # handed out as is: nobody may change it
        while not self._done():
            try:
                self._queue.put(out, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False
