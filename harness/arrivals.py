"""A real client playing an RTMP stream, watching when its video arrives in wall-clock time.

A stream's timestamps count frames: a daemon that froze for seconds and then went on numbering
its frames leaves them consecutive, so a "no gap" check on timestamps sees lost packets only.
This client stamps each video packet with `time.monotonic()` as it is read, so a stall shows
up as a hole in the arrivals and as a jump in `arrival - pts` that stays, while the stream's
timestamps run on without a gap.

The client is FFmpeg's RTMP protocol with the raw `data` demuxer and muxer: the FLV the server
sends, byte for byte, as it comes (`-flush_packets 1`), parsed here. A demuxing client
(ffprobe, `ffmpeg -i`) would not do: it drops (`-fflags nobuffer`) or holds back what it read
while probing, and one that joins a stream late finds only the audio with a short probe
(nginx-rtmp sends a late joiner's video from the next keyframe, up to 2 s in) and then never
shows the video.

Measured here (2 cores; the daemon at 320x240 ultrafast, piper speaking, RabbitMQ, the client
on the same machine), over runs of 3-20 s past the stream's start: the largest wait between
two video packets 0.07-0.14 s, `arrival - pts` within 0.05-0.14 s. A daemon frozen for 1 s
(or 1.5 s), its frames numbered on: a wait of 1.03-1.07 s (1.51 s), `arrival - pts` moved
1.05 s (1.56 s). STALL_S lies between, far from both.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

import numpy as np
import numpy.typing as npt

from avatarcast.onair.encoder import START_WINDOW_S

# A hole in the arrivals (or a shift in `arrival - pts`) this long is a stall, not jitter:
# jitter stays under 0.15 s here, a stall a viewer notices is a second or more (see above).
STALL_S = 0.5

_VIDEO = 9


class Arrivals:
    """A client playing `url`: each video frame's (pts, arrival, keyframe), read on a thread.
    Start it before the stream does (it waits up to `idle_timeout_s` for data; it also waits
    that long after the stream stops, and for a new publisher in between), or late: it joins
    wherever the server lets it (nginx-rtmp: at any frame)."""

    def __init__(self, url: str, idle_timeout_s: float = 3.0) -> None:
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-rw_timeout",
             str(int(idle_timeout_s * 1e6)), "-f", "data", "-i", url,
             "-map", "0", "-c", "copy", "-f", "data", "-flush_packets", "1", "pipe:1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self._rows: list[tuple[float, float, bool]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="arrivals", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        header = True
        while chunk := os.read(fd, 1 << 16):
            at = time.monotonic()  # every tag this read completes arrived now
            buf += chunk
            if header:  # "FLV", version, flags, header size, then the first tag size (0)
                if len(buf) < 13:
                    continue
                buf, header = buf[13:], False
            while len(buf) >= 11:  # a tag: 11-byte header, `size` bytes, its own size (4)
                size = int.from_bytes(buf[1:4], "big")
                if len(buf) < 15 + size:
                    break
                tag, buf = buf[:11 + size], buf[15 + size:]
                # Video data: frame type (1 key) | codec; AVC packet type (1: a frame, 0: the
                # codec configuration); composition offset (0 without B-frames).
                if tag[0] & 0x1F != _VIDEO or size < 5 or tag[12] != 1:
                    continue
                ts = int.from_bytes(tag[4:7], "big") | tag[7] << 24
                cts = int.from_bytes(tag[13:16], "big", signed=True)
                with self._lock:
                    self._rows.append(((ts + cts) / 1000, at, tag[11] >> 4 == 1))

    def packets(self) -> npt.NDArray[np.float64]:
        """Rows of (pts s, arrival s on time.monotonic, 1.0 for a keyframe), as received."""
        with self._lock:
            return np.array(self._rows, dtype=np.float64).reshape(-1, 3)

    def since(self, t: float) -> npt.NDArray[np.float64]:
        """The packets that arrived at or after `t` (time.monotonic)."""
        rows = self.packets()
        return rows[rows[:, 1] >= t]

    def wait_packets(self, n: int, limit_s: float, after: float = 0.0) -> npt.NDArray[np.float64]:
        """Until `n` video packets arrived at or after `after`; returns those packets."""
        deadline = time.monotonic() + limit_s
        while len(got := self.since(after)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} video packets in {limit_s:.0f} s (wanted {n})")
            if not self._thread.is_alive():
                raise AssertionError(f"the client ended (exit {self.proc.poll()}) after "
                                     f"{len(got)} video packets (wanted {n})")
            time.sleep(0.02)
        return got

    def stop(self) -> npt.NDArray[np.float64]:
        """Ends the client; returns every video packet it received."""
        # Killed: what it received is already read, and FFmpeg blocked on the server's
        # socket would only see a SIGTERM at its read timeout.
        self.proc.kill()
        self.proc.wait()
        self._thread.join(5)
        return self.packets()


def largest_gap(rows: npt.NDArray[np.float64]) -> float:
    """The longest wall-clock wait between two video packets arriving (s)."""
    return float(np.diff(rows[:, 1]).max())


def started(rows: npt.NDArray[np.float64]) -> float:
    """When the stream a client received began (time.monotonic): its first packet's arrival
    less that packet's pts. For a stream whose timestamps start at zero (a new encoder run, a
    relay that rejoined), wherever the client joined it: nginx-rtmp starts a client that
    joins late at the next keyframe, up to a keyframe interval after the stream began."""
    return float(rows[0, 1] - rows[0, 0])


def past_start(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The packets after the stream's start window: in an encoder run's first START_WINDOW_S
    its frames may wait for FFmpeg to get going and then catch up at once (by design, see
    avatarcast.onair.encoder). For a client there from the stream's first frame."""
    return rows[rows[:, 1] >= rows[0, 1] + START_WINDOW_S]


def drift(rows: npt.NDArray[np.float64]) -> float:
    """How far the stream's clock moved against the wall clock over `rows` (s): the range of
    `arrival - pts`. A stall the stream's timestamps hide (the frames after it numbered on
    from before it) shifts it by the stall's length for good; so does a burst of frames sent
    faster than real time (a backlog sent at once after an outage), the other way."""
    lag = rows[:, 1] - rows[:, 0]
    return float(lag.max() - lag.min())


def frame_numbers(rows: npt.NDArray[np.float64], fps: int) -> npt.NDArray[np.int64]:
    """Each packet's frame number, counted from the first packet's (FLV's timestamps are
    whole milliseconds, so k / fps to within a millisecond, plus the first one's offset)."""
    k = (rows[:, 0] - rows[0, 0]) * fps
    assert float(abs(k - np.round(k)).max()) < 0.05, "a pts that is no frame's"
    return np.round(k).astype(np.int64)


def breaks(rows: npt.NDArray[np.float64], fps: int) -> npt.NDArray[np.float64]:
    """The pts at which the frames do not go on by exactly one (one lost, repeated, or out of
    order); empty for a stream that lost nothing, which then holds span * fps + 1 frames."""
    return rows[1:][np.diff(frame_numbers(rows, fps)) != 1, 0]
