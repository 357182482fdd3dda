"""Real RTMP clients that watch what the server relays, each an FFmpeg reading the stream and
a thread stamping what arrives with the wall clock:

  PacketLog   every packet's stream timestamps (copied, not decoded): cadence and drift
  AudioWatch  decoded audio in 10 ms windows: when speech starts and stops arriving
  MouthWatch  the decoded picture cropped to the mouth box: when the mouth starts moving
"""

from __future__ import annotations

import bisect
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.services import stop_process

CLIENT = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-fflags", "nobuffer",
          "-analyzeduration", "3000000", "-rw_timeout", "5000000"]
LOUD = 0.02  # RMS (full scale 1) above which a 10 ms window is speech, not idle silence


class _Client:
    def __init__(self, url: str, output: list[str], text: bool) -> None:
        self.proc = subprocess.Popen([*CLIENT, "-i", url, *output], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=text)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        stop_process(self.proc)
        self._thread.join(5)


@dataclass
class Packets:
    """Per stream ('v', 'a'): arrival wall time, dts and duration in seconds."""

    arrival: dict[str, list[float]] = field(default_factory=lambda: {"v": [], "a": []})
    dts: dict[str, list[float]] = field(default_factory=lambda: {"v": [], "a": []})
    duration: dict[str, list[float]] = field(default_factory=lambda: {"v": [], "a": []})


class PacketLog(_Client):
    """The stream copied, not decoded, as FFmpeg's framecrc lines: cheap enough for a soak."""

    def __init__(self, url: str) -> None:
        self.packets = Packets()
        self._kinds: dict[str, str] = {}
        self._tb: dict[str, float] = {}
        super().__init__(url, ["-map", "0", "-c", "copy", "-f", "framecrc",
                               "-flush_packets", "1", "pipe:1"], text=True)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        p = self.packets
        for line in self.proc.stdout:
            now = time.time()
            if line.startswith("#"):
                key, _, value = line[1:].partition(":")
                name, _, index = key.strip().rpartition(" ")
                if name == "media_type":
                    self._kinds[index] = "v" if value.strip() == "video" else "a"
                elif name == "tb":
                    num, den = value.strip().split("/")
                    self._tb[index] = int(num) / int(den)
                continue
            parts = [x.strip() for x in line.split(",")]
            kind = self._kinds.get(parts[0])
            if kind is None or len(parts) < 4:
                continue
            tb = self._tb.get(parts[0], 0.001)
            p.arrival[kind].append(now)
            p.dts[kind].append(int(parts[1]) * tb)
            p.duration[kind].append(int(parts[3]) * tb)


class AudioWatch(_Client):
    """Audio decoded to 16 kHz mono; per 10 ms window, when it arrived and whether it is loud."""

    def __init__(self, url: str) -> None:
        self.times: list[float] = []
        self.loud: list[bool] = []
        self._lock = threading.Lock()
        super().__init__(url, ["-map", "0:a", "-ac", "1", "-ar", "16000", "-f", "s16le",
                               "pipe:1"], text=False)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read(320):
            x = np.frombuffer(chunk[: len(chunk) // 2 * 2], np.int16).astype(np.float32) / 32768
            loud = bool(x.size) and float(np.sqrt((x**2).mean())) > LOUD
            with self._lock:
                self.times.append(time.time())
                self.loud.append(loud)

    def first_loud_after(self, t: float, timeout: float) -> float | None:
        def check() -> float | None:
            with self._lock:
                for i in range(bisect.bisect_left(self.times, t), len(self.times)):
                    if self.loud[i]:
                        return self.times[i]
            return None

        return _wait_first(check, timeout)

    def last_loud_before_quiet(self, t: float, quiet_s: float, timeout: float) -> float | None:
        """After t: the arrival of the last loud window followed by `quiet_s` of silence."""
        need = round(quiet_s / 0.01)

        def check() -> float | None:
            with self._lock:
                start = bisect.bisect_left(self.times, t)
                last, run = t, 0
                for i in range(start, len(self.times)):
                    if self.loud[i]:
                        last, run = self.times[i], 0
                    else:
                        run += 1
                        if run >= need:
                            return last
            return None

        return _wait_first(check, timeout)


class MouthWatch(_Client):
    """The picture cropped to the mouth box (gray); when it first differs from the idle mouth."""

    def __init__(self, url: str, box: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = box
        self.w, self.h = (x1 - x0) // 2 * 2, (y1 - y0) // 2 * 2
        self.times: list[float] = []
        self.change: list[float] = []
        self._idle: np.ndarray | None = None
        self._lock = threading.Lock()
        super().__init__(url, ["-map", "0:v", "-vf", f"crop={self.w}:{self.h}:{x0}:{y0}",
                               "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"], text=False)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        size = self.w * self.h
        while len(raw := self.proc.stdout.read(size)) == size:
            img = np.frombuffer(raw, np.uint8).astype(np.int16)
            if self._idle is None:
                self._idle = img
            change = float(np.abs(img - self._idle).mean())
            with self._lock:
                self.times.append(time.time())
                self.change.append(change)

    def first_move_after(self, t: float, timeout: float, threshold: float = 3.0) -> float | None:
        def check() -> float | None:
            with self._lock:
                for i in range(bisect.bisect_left(self.times, t), len(self.times)):
                    if self.change[i] > threshold:
                        return self.times[i]
            return None

        return _wait_first(check, timeout)


def _wait_first(check: Callable[[], float | None], timeout: float) -> float | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.01)
    return None
