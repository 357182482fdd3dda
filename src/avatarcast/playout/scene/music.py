"""The music bed: a folder of tracks, shuffled (none twice in a row), each brought to one
loudness and crossfaded into the next, fed by a thread of its own a few seconds ahead of the
pacer, which takes what each tick needs (`read`).

Each track is decoded twice by FFmpeg (mono, 48 kHz, float): once to measure its integrated
loudness (media/loudness.py), once to play it at the gain that brings it to the bed's level,
streamed, so that memory holds a few seconds of it, not the track. A file that cannot be
decoded is left out with one line; a folder with nothing playable leaves the bed silent, says so
in the channel's status, and is looked at again every minute."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from ...infra.threads import start_thread
from ...media.loudness import LoudnessMeter
from .spec import Music

log = logging.getLogger(__name__)

SUFFIXES = {".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac"}
RATE = 48_000
CHUNK = RATE // 10  # what the feeder hands over at a time
AHEAD_S = 10.0  # how far the feeder runs ahead of the pacer (the next track is measured meanwhile)
MAX_GAIN_DB = 20.0  # a very quiet track is brought up this far at most
PEAK_CEILING = 0.9  # nor so far that its peaks pass this
STALL_S = 20.0  # FFmpeg silent this long on a track: it is given up
RETRY_S = 60.0  # a folder with nothing playable is looked at again after this

Samples = npt.NDArray[np.float32]


class TrackError(Exception):
    """A track that cannot be played; the message says why in one line."""


def tracks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


def decode(path: Path, errors: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn",
         "-ac", "1", "-ar", str(RATE), "-f", "f32le", "pipe:1"],
        stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)


class TrackStalled(TrackError):
    """FFmpeg handed nothing over for STALL_S while it was read (a hung network mount): the
    track may play another time."""


def chunks(path: Path, stop: threading.Event) -> Iterator[Samples]:
    """The track decoded, CHUNK samples at a time; TrackError if FFmpeg fails, TrackStalled if
    it hangs. (Its errors go to a file: a pipe read only at the end could fill and block it.)"""
    with tempfile.TemporaryFile() as errors:
        proc = decode(path, errors)
        assert proc.stdout is not None
        watch = _Watchdog(proc)
        try:
            while not stop.is_set():
                with watch.reading():
                    data = proc.stdout.read(CHUNK * 4)
                if not data:
                    break
                yield np.frombuffer(data[: len(data) // 4 * 4], np.float32)
            if stop.is_set():
                return
            if proc.wait(5) != 0 or watch.stalled:
                if watch.stalled:
                    raise TrackStalled(f"{path.name}: FFmpeg gave nothing for {STALL_S:g} s")
                errors.seek(0)
                said = errors.read().decode("utf-8", "replace").strip().splitlines()
                why = said[-1] if said else f"exit {proc.returncode}"
                raise TrackError(f"{path.name}: cannot be decoded ({why[:200]})")
        finally:
            watch.done()
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            proc.stdout.close()


class _Watchdog:
    """Kills a decoder that hands nothing over for STALL_S while it is read (not while the
    feeder waits for the pacer: a stopped bed leaves its decoder paused, not hung)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._since: float | None = None  # when the read in progress began
        self._done = threading.Event()
        self.stalled = False
        start_thread(self._run, name="music-watch", daemon=True)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        self._since = time.monotonic()
        try:
            yield
        finally:
            self._since = None

    def done(self) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(1.0):
            since = self._since
            if since is not None and time.monotonic() - since > STALL_S:
                self.stalled = True
                self._proc.kill()
                return


def gain_for(path: Path, level_lufs: float, stop: threading.Event) -> float:
    """The linear gain that brings the track to `level_lufs` (bounded; peaks kept under the
    ceiling). TrackError for a file that cannot be decoded or is silent."""
    meter = LoudnessMeter(peak=False)
    peak = 0.0
    for piece in chunks(path, stop):
        meter.push(piece)
        peak = max(peak, float(np.abs(piece).max(initial=0.0)))
    loudness = meter.integrated
    if not math.isfinite(loudness):
        raise TrackError(f"{path.name}: silent, or too short to measure")
    gain_db = min(MAX_GAIN_DB, level_lufs - loudness)
    gain = 10 ** (gain_db / 20)
    if peak * gain > PEAK_CEILING:
        gain = PEAK_CEILING / peak
    return gain


class MusicBed:
    """Owned by its feeder thread; `read` is the pacer's, `close` the event loop's."""

    def __init__(self, music: Music, seed: int | None = None) -> None:
        self.music = music
        self._random = random.Random(seed)
        self._ready: deque[Samples] = deque()
        self._have = 0  # samples in _ready
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._last: Path | None = None
        self._bad: dict[Path, tuple[float, int] | None] = {}  # files that failed: their stamp
        self._tail = np.zeros(0, np.float32)  # the end of the last track, for the crossfade
        self.now_playing: str | None = None
        self.problem: str | None = None  # why nothing plays, when nothing can
        self.underruns = 0  # ticks the feeder had not filled in time, once it had begun
        self._started = False
        self._thread = start_thread(self._feed, name="music", daemon=True)

    # -- the pacer's side ----------------------------------------------------------------

    def read(self, n: int) -> Samples:
        """The next n samples of the bed at its level (silence where the feeder is late)."""
        out = np.zeros(n, np.float32)
        got = 0
        with self._lock:
            while got < n and self._ready:
                head = self._ready[0]
                take = min(n - got, head.size)
                out[got:got + take] = head[:take]
                got += take
                if take == head.size:
                    self._ready.popleft()
                else:
                    self._ready[0] = head[take:]
            self._have -= got
            self._room.notify()
        if got == n:
            self._started = True
        elif self._started and self.problem is None:
            self.underruns += 1
        return out

    # -- the feeder ----------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._room.notify()
        self._thread.join(5.0)

    def _put(self, samples: Samples) -> bool:
        """Hand samples over, waiting while the pacer has AHEAD_S in hand; False once closed."""
        with self._lock:
            while self._have > AHEAD_S * RATE and not self._stop.is_set():
                self._room.wait(0.5)
            if self._stop.is_set():
                return False
            self._ready.append(samples)
            self._have += samples.size
        return True

    def _next_track(self) -> Path | None:
        try:
            files = tracks_in(self.music.folder)
        except OSError as exc:
            self.problem = f"music: {self.music.folder}: {exc.strerror or exc}"
            return None
        if not files:
            self.problem = f"music: no audio files in {self.music.folder}"
            return None
        playable = [f for f in files if self._bad.get(f) != _stamp(f)]
        if not playable:
            self.problem = f"music: no track in {self.music.folder} could be played"
            return None
        choices = [f for f in playable if f != self._last] or playable
        self._last = self._random.choice(choices)
        return self._last

    def _feed(self) -> None:
        while not self._stop.is_set():
            path = self._next_track()
            if path is None:
                log.warning("%s; the bed is silent (looked at again in %.0f s)",
                            self.problem, RETRY_S)
                self._stop.wait(RETRY_S)
                continue
            try:
                self._play(path)
            except TrackStalled as exc:
                log.warning("music: %s; on to the next", exc)
            except TrackError as exc:
                if self._stop.is_set():
                    return
                # Left out until the file changes.
                self._bad[path] = _stamp(path)
                log.warning("music: %s; left out", exc)
            except Exception:  # the bed goes silent; the stream does not stop for it
                log.exception("music: the feeder failed on %s", path.name)
                self.problem = f"music: the feeder failed on {path.name}"
                self._stop.wait(RETRY_S)

    def _play(self, path: Path) -> None:
        """Stream one track into the bed, its start mixed with the end of the last one
        (`_tail`, used once); the end of its own kept in `_tail` for the next."""
        gain = gain_for(path, self.music.level_lufs, self._stop)
        self.now_playing = path.name
        self.problem = None
        log.info("music: %s (gain %+.1f dB)", path.name, 20 * math.log10(gain))
        keep = round(self.music.crossfade_s * RATE)
        held: deque[Samples] = deque()
        held_n = 0
        head = np.zeros(0, np.float32)
        for piece in chunks(path, self._stop):
            piece = piece * gain
            tail = self._tail
            if tail.size and head.size < tail.size:  # the crossfade: both at once
                head = np.concatenate([head, piece])
                if head.size < tail.size:
                    continue
                piece = np.concatenate([_crossfade(tail, head[:tail.size]), head[tail.size:]])
                self._tail = np.zeros(0, np.float32)
            held.append(piece)
            held_n += piece.size
            while held and held_n - held[0].size >= keep:
                held_n -= held[0].size
                if not self._put(held.popleft()):
                    return
        if head.size and self._tail.size:  # a track shorter than the crossfade
            held.append(_crossfade(self._tail[:head.size], head))
            self._tail = np.zeros(0, np.float32)
        rest = np.concatenate(list(held)) if held else np.zeros(0, np.float32)
        if keep and rest.size > keep:
            if self._put(rest[:-keep]):
                self._tail = rest[-keep:].copy()
        elif keep:
            self._tail = rest
        else:
            self._put(rest)


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime, st.st_size


def _crossfade(out: Samples, into: Samples) -> Samples:
    """Equal-power: the sum of two uncorrelated tracks keeps its loudness through the fade."""
    t = np.linspace(0.0, 1.0, out.size, dtype=np.float32)
    return (out * np.cos(t * np.pi / 2) + into * np.sin(t * np.pi / 2)).astype(np.float32)
