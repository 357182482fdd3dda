"""The one FFmpeg process: raw yuv420p on stdin, PCM through a named FIFO written by its own
thread, restarted with backoff when it dies while the clock keeps running (an FfmpegChild,
whose supervising thread, "encoder", serves each run: it starts the writer threads and waits
for FFmpeg to exit).

`submit` never blocks the pacer: a frame that does not fit (FFmpeg down or stalled) is dropped,
never queued up. In a new run's first START_WINDOW_S, up to START_ROOM_S of frames may wait
for it: FFmpeg reads a first frame, opens its audio input, connects to the server, and only
then reads on; on a busy machine (voices loading, other channels starting) that outlasts the
few frames allowed in flight later. It catches up within a second: it encodes faster than
the clock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from ..infra.threads import start_thread
from ..media.audio import Pcm
from ..media.frames import Frame
from ..settings import AudioSettings, OutputSettings, VideoSettings
from .fanout import Fanout, Preamble, Relay
from .ffmpeg_args import Target, build_args, relay_args, targets
from .ffmpeg_child import ChildStatus, Exit, FfmpegChild, Proc, RestartPolicy
from .reconnect import Address
from .tick import Receipt

log = logging.getLogger(__name__)


class _Shared:
    """A receipt shared by the video and the audio writer: fires once both wrote their part."""

    def __init__(self, receipt: Receipt) -> None:
        self._receipt = receipt
        self._left = 2
        self._lock = threading.Lock()
        self._settled = False

    def part_written(self) -> None:
        with self._lock:
            self._left -= 1
            fire = self._left == 0 and not self._settled
            self._settled = self._settled or fire
        if fire:
            self._receipt.written()

    def dropped(self) -> None:
        with self._lock:
            fire = not self._settled
            self._settled = True
        if fire:
            self._receipt.dropped()


@dataclass
class _Item:
    # Frames and audio slices are never written to once made, so the writer threads can send
    # the arrays themselves: no copy on the pacer's side.
    data: npt.NDArray[Any]
    receipt: _Shared | None
    quiet_after: int = 0  # audio: samples after this slice that are certain to be silent


_STOP = _Item(np.zeros(0, dtype=np.uint8), None)
# Silence sent ahead of its tick, at most: two AAC frames (the one holding the end of the sound
# and the next, which the encoder needs before it can finish the first).
LOOKAHEAD = 2048
# Frames that may wait for a new FFmpeg run to get going, in seconds of stream; and how long
# after its start that allowance lasts.
START_ROOM_S = 1.5
START_WINDOW_S = 3.0


class _EarlySilence:
    """The audio writer's account of silence sent before its tick: the total sent stays exactly
    the ticks' samples (A/V sync is by sample count), only earlier."""

    def __init__(self, most: int) -> None:
        self._most = most
        self.ahead = 0  # samples already written for ticks still to come (all zero)

    def parts(self, audio: npt.NDArray[Any], quiet_after: int) -> list[npt.NDArray[Any]]:
        skip = min(self.ahead, len(audio))
        self.ahead -= skip
        out = [audio[skip:]] if skip < len(audio) else []
        extra = min(quiet_after, self._most) - self.ahead
        if extra > 0:
            out.append(np.zeros(extra, audio.dtype))
            self.ahead += extra
        return out


class Encoder(ChildStatus):
    def __init__(
        self,
        video: VideoSettings,
        audio: AudioSettings,
        output: OutputSettings,
        on_state: Callable[[bool], None] = lambda up: None,
    ) -> None:
        self._video, self._audio, self._output = video, audio, output
        self._on_state = on_state
        # Unbounded: `submit` keeps them within queue_frames (or the start's room).
        self._vq: queue.Queue[_Item] = queue.Queue()
        self._aq: queue.Queue[_Item] = queue.Queue()
        self._start_room = max(output.queue_frames, round(START_ROOM_S * video.fps))
        self._up = False
        self._tmp = Path(tempfile.mkdtemp(prefix="avatarcast-"))
        self._fifo = self._tmp / "audio.pcm"
        os.mkfifo(self._fifo)
        self.generation = 0  # FFmpeg runs so far
        self.frames_written = 0  # frames written to the current FFmpeg run
        self._closed = False
        self._targets = targets(output)
        self._fanout: Fanout | None = None
        servers: list[Address] = []
        if len(self._targets) > 1:
            # Several outputs: each stands alone; the encoder's own backoff probes nothing.
            self._fanout = Fanout(self._relays)
        else:
            servers = list(self._targets[0].servers)
        self._child = FfmpegChild(
            args=self._command, serve=self._serve, on_exit=self._ended,
            policy=RestartPolicy(output.restart_backoff_min_s, output.restart_backoff_max_s,
                                 output.stable_after_s),
            servers=servers, log=log, log_prefix="", errors_at=logging.ERROR,
            thread="encoder", log_thread="enc-log", read_stdout=self._fanout is not None,
        )

    def _relays(self, preamble: Preamble) -> list[Relay]:
        out, ffmpeg = self._output, self._output.ffmpeg_path

        def args(t: Target) -> Callable[[], list[str]]:
            return lambda: relay_args(ffmpeg, t)

        return [Relay(name=t.name, args=args(t), servers=list(t.servers), preamble=preamble,
                      backoff_s=(out.restart_backoff_min_s, out.restart_backoff_max_s),
                      stable_after_s=out.stable_after_s) for t in self._targets]

    def outputs(self) -> list[dict[str, Any]]:
        """Each output's state when there are several (no URLs: they may hold keys)."""
        if self._fanout is None:
            return []
        return [{"name": r.name, "live": r.live, "paused": r.paused, "restarts": r.restarts,
                 "last_error": r.last_error} for r in self._fanout.relays]

    def pause_recording(self, on: bool) -> None:
        """Pause the recording (the disk is short of space), or resume it. Only beside other
        outputs: a recording that is the only output is the stream, and goes on."""
        relays = self._fanout.relays if self._fanout is not None else []
        for relay in relays:
            if relay.name == "record":
                relay.pause(on)
        if on and not relays and self._targets[0].name == "record":
            log.warning("the recording is the only output (the stream): it goes on")

    @property
    def alive(self) -> bool:
        return self._up

    @property
    def uptime_s(self) -> float:
        """Seconds the current FFmpeg run has been up (0 while it is down)."""
        started = self._child.run_started
        if not self._up or started is None:
            return 0.0
        return time.monotonic() - started

    @property
    def pid(self) -> int | None:
        proc = self._child.proc
        return proc.pid if proc is not None and self._up else None

    def start(self) -> None:
        if self._fanout is not None:
            self._fanout.start()
        self._child.start()

    def wait_up(self, limit_s: float) -> bool:
        deadline = time.monotonic() + limit_s
        while not self._up and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._up

    def submit(self, frame: Frame, audio: Pcm, receipt: Receipt | None = None,
               quiet_after: int = 0) -> bool:
        """One tick. `quiet_after`: samples after this tick's that are certain to be silent;
        up to LOOKAHEAD of them are written now, so that the AAC frames holding the end of the
        sound are complete (and leave FFmpeg) without waiting for the next ticks."""
        started = self._child.run_started
        starting = started is not None and time.monotonic() - started < START_WINDOW_S
        room = self._start_room if starting else self._output.queue_frames
        if not self._up or self._vq.qsize() >= room or self._aq.qsize() >= room:
            return False
        shared = _Shared(receipt) if receipt is not None else None
        self._vq.put_nowait(_Item(np.ascontiguousarray(frame), shared))
        self._aq.put_nowait(_Item(np.ascontiguousarray(audio), shared, quiet_after))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Ends the stream cleanly: the writers finish what is queued, FFmpeg flushes and exits."""
        if self._closed:
            return
        self._closed = True
        self._child.stop()
        for q in (self._vq, self._aq):
            with contextlib.suppress(queue.Full):
                q.put(_STOP, timeout=1.0)
        self._child.join(timeout)
        if self._fanout is not None:
            self._fanout.close()
        self._child.kill()
        with contextlib.suppress(OSError):
            self._fifo.unlink()
            self._tmp.rmdir()

    # -- one run (on the supervising thread) ---------------------------------------------

    def _command(self) -> list[str]:
        args = build_args(self._video, self._audio, self._output, str(self._fifo),
                          None if self._fanout is not None else self._targets[0])
        self.generation += 1
        self.frames_written = 0
        log.info("encoder run %d: %s", self.generation, " ".join(args))
        return args

    def _serve(self, proc: Proc) -> bool:
        assert proc.stdin is not None
        threads = [
            start_thread(self._write_video, proc.stdin, name="enc-video", daemon=True),
            start_thread(self._write_audio, proc, name="enc-audio", daemon=True),
        ]
        if self._fanout is not None:
            assert proc.stdout is not None
            threads.append(start_thread(self._fanout.pump, proc.stdout, name="enc-fanout",
                                        daemon=True))
        self._set_up(True)
        proc.wait()
        self._set_up(False)
        for t in threads:
            t.join(5.0)
        self._drain()
        return True

    def _ended(self, end: Exit) -> None:
        if end.stopping:
            log.info("encoder stopped (exit %d after %.1f s)", end.code, end.ran_s)
            return
        self._child.note_error(f"ffmpeg exited with code {end.code}")
        log.error("encoder died (exit %d after %.1f s): %s", end.code, end.ran_s,
                  self.last_error)
        if end.failures:
            log.warning("encoder restart %d failed (%s); next try in %.1f s",
                        end.failures, self.last_error, end.delay_s)

    def _set_up(self, up: bool) -> None:
        if up != self._up:
            self._up = up
            self._on_state(up)

    def _drain(self) -> None:
        """Frames queued for a dead process fall in the outage: drop them."""
        for q in (self._vq, self._aq):
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item.receipt is not None:
                    item.receipt.dropped()

    # -- pipe threads --------------------------------------------------------------------

    def _write_video(self, pipe: IO[bytes]) -> None:
        try:
            self._pump(self._vq, pipe, count=True)
        finally:
            with contextlib.suppress(OSError):
                pipe.close()

    def _write_audio(self, proc: Proc) -> None:
        fd = self._open_fifo(proc)
        if fd is None:
            return
        with os.fdopen(fd, "wb", buffering=0) as pipe, contextlib.suppress(OSError):
            self._pump(self._aq, pipe, count=False, early=_EarlySilence(LOOKAHEAD))

    def _open_fifo(self, proc: Proc) -> int | None:
        # Opening a FIFO for writing blocks until FFmpeg opens it; poll instead, so a process
        # that dies before reaching its second input cannot hang this thread.
        while proc.poll() is None:
            try:
                fd = os.open(self._fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.005)
                continue
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
            return fd
        return None

    def _pump(self, q: queue.Queue[_Item], pipe: IO[bytes], count: bool,
              early: _EarlySilence | None = None) -> None:
        while True:
            try:
                item = q.get(timeout=0.5)
            except queue.Empty:
                proc = self._child.proc
                if proc is not None and proc.poll() is not None:
                    return
                continue
            if item is _STOP:
                return
            try:
                if early is None:
                    pipe.write(item.data.data.cast("B"))
                else:
                    for part in early.parts(item.data, item.quiet_after):
                        pipe.write(part.data.cast("B"))
            except (BrokenPipeError, ValueError, OSError) as exc:
                self._child.note_error(f"pipe to ffmpeg closed: {exc}")
                if item.receipt is not None:
                    item.receipt.dropped()
                return
            if count:
                self.frames_written += 1
            if item.receipt is not None:
                item.receipt.part_written()
