"""One encoded stream, several outputs that stand alone.

With more than one output the encoder writes FLV to its stdout; the fan-out reads it tag by
tag and hands every tag to one relay per output: an `ffmpeg -c copy` process of its own. A relay
whose server fails is retried on its own (backoff, ended early when its server accepts
connections again) and rejoins at the next keyframe, with the stream's header and codec
configuration replayed and its timestamps restarting at zero; the other outputs never notice.
(FFmpeg's tee muxer keeps the others going too, but never retries a failed output.)

Threads: the fan-out's reader runs on a thread per encoder run; each relay has its own writer
thread (its FfmpegChild's supervising thread, "relay-NAME", which serves each run by writing
to it), fed through a bounded queue, so a stalled server never holds up the encoder or the
other outputs (a relay that falls a few seconds behind is restarted).
"""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from .ffmpeg_child import ChildStatus, Exit, FfmpegChild, Proc, RestartPolicy
from .reconnect import Address

log = logging.getLogger(__name__)

_AUDIO, _VIDEO, _SCRIPT = 8, 9, 18
_QUEUE_TAGS = 300  # about 5 s of audio and video tags at 30 fps


@dataclass(frozen=True)
class Tag:
    kind: int
    timestamp: int  # ms
    raw: bytes  # the whole tag: 11-byte header, data, 4-byte previous-tag size

    @property
    def keyframe(self) -> bool:
        return self.kind == _VIDEO and len(self.raw) > 11 and self.raw[11] >> 4 == 1

    @property
    def config(self) -> bool:
        """An AVC or AAC sequence header: needed by a decoder before any frame."""
        if len(self.raw) <= 12 or self.raw[12] != 0:
            return False
        return (self.kind == _VIDEO and self.raw[11] & 0x0F == 7) or (
            self.kind == _AUDIO and self.raw[11] >> 4 == 10)

    def shifted(self, base: int) -> bytes:
        ts = max(0, self.timestamp - base)
        raw = bytearray(self.raw)
        raw[4:7] = (ts & 0xFFFFFF).to_bytes(3, "big")
        raw[7] = (ts >> 24) & 0xFF
        return bytes(raw)


def read_flv(pipe: IO[bytes]) -> Iterator[bytes | Tag]:
    """The FLV header (bytes, with the first previous-tag size), then tags until EOF."""
    head = _read(pipe, 13)
    if head is None or head[:3] != b"FLV":
        return
    yield head
    while (tag_head := _read(pipe, 11)) is not None:
        size = int.from_bytes(tag_head[1:4], "big")
        body = _read(pipe, size + 4)
        if body is None:
            return
        ts = int.from_bytes(tag_head[4:7], "big") | (tag_head[7] << 24)
        yield Tag(tag_head[0] & 0x1F, ts, tag_head + body)


def _read(pipe: IO[bytes], n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = pipe.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class Preamble:
    """What a relay replays before it joins: the header, the metadata and codec configs."""

    def __init__(self) -> None:
        self.header = b""
        self.tags: dict[tuple[int, bool], Tag] = {}

    def note(self, tag: Tag) -> None:
        if tag.kind == _SCRIPT or tag.config:
            self.tags[(tag.kind, tag.config)] = tag

    def bytes(self) -> bytes:
        return self.header + b"".join(t.shifted(t.timestamp) for t in self.tags.values())

    def has(self, tag: Tag) -> bool:
        """Is this metadata or codec configuration the one the preamble replays?"""
        if tag.kind != _SCRIPT and not tag.config:
            return False
        known = self.tags.get((tag.kind, tag.config))
        return known is not None and known.raw[11:] == tag.raw[11:]


class Relay(ChildStatus):
    """One output: its own `ffmpeg -c copy` process, retried on its own."""

    def __init__(
        self, *, name: str, args: Callable[[], list[str]], servers: list[Address],
        backoff_s: tuple[float, float], stable_after_s: float, preamble: Preamble,
    ) -> None:
        self.name = name
        self._args = args
        self._preamble = preamble
        # None: start over (a stall, or a new stream from the encoder).
        self._tags: queue.Queue[Tag | None] = queue.Queue(_QUEUE_TAGS)
        self._new_stream = False
        self._accepting = False
        self.live = False
        self.paused = False  # by the disk watch: nothing written until it is unpaused
        self._child = FfmpegChild(
            args=self._command, serve=self._serve, on_exit=self._ended,
            policy=RestartPolicy(*backoff_s, stable_after_s, always_wait=True),
            servers=servers, log=log, log_prefix=f"output {name}: ", errors_at=logging.WARNING,
            thread=f"relay-{name}", log_thread="relay-log", log_join_s=2.0,
        )

    def start(self) -> None:
        self._child.start()

    def feed(self, tag: Tag) -> None:
        if not self._accepting or self.paused:  # nothing to keep: it rejoins at a keyframe
            return
        try:
            self._tags.put_nowait(tag)
        except queue.Full:  # the server stalls: start over rather than hold anyone up
            self._drop_queue()
            self._tags.put_nowait(None)

    def feed_restart(self) -> None:
        """The encoder starts a new stream: rejoin it from its first keyframe, at once."""
        self._new_stream = True
        self._drop_queue()
        with contextlib.suppress(queue.Full):
            self._tags.put_nowait(None)

    def pause(self, on: bool) -> None:
        """Write nothing from now on (FFmpeg stays up, its file open and no longer growing),
        or go on from the next keyframe."""
        if on != self.paused:
            self.paused = on
            log.warning("output %s %s", self.name, "paused" if on else "resumes")

    def close(self, timeout: float = 5.0) -> None:
        self._child.stop()
        with contextlib.suppress(queue.Full):
            self._tags.put_nowait(None)
        self._child.close(timeout)

    def _drop_queue(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._tags.get_nowait()

    # -- one run (on the supervising thread) ---------------------------------------------

    def _command(self) -> list[str]:
        self._new_stream = False
        return self._args()

    def _serve(self, proc: Proc) -> bool:
        """Feeds the stream from its next keyframe until it ends; False: a new stream from
        the encoder, to be joined at once."""
        assert proc.stdin is not None
        self._drop_queue()
        self._accepting = True
        base: int | None = None
        joined = False
        try:
            while not self._child.stopping and proc.poll() is None:
                if self.paused:
                    joined = self.live = False
                try:
                    tag = self._tags.get(timeout=0.5)
                except queue.Empty:
                    continue
                if tag is None:
                    break
                if not joined:
                    # Join at a keyframe (a decoder cannot start elsewhere); an AVC sequence
                    # header is flagged as a keyframe too, but it is not a frame.
                    if not tag.keyframe or tag.config or self.paused:
                        continue
                    if base is None:
                        base = tag.timestamp
                        proc.stdin.write(self._preamble.bytes())
                    joined = self.live = True
                    log.info("output %s on air", self.name)
                elif self._preamble.has(tag):
                    # Already sent in the preamble: sent again, FFmpeg's FLV reader makes a
                    # second pair of streams of it (a recording then holds four).
                    continue
                assert base is not None  # (set at the first join)
                proc.stdin.write(tag.shifted(base))
                # At once: the pipe's buffer (8 KiB) would hold the stream back and send it
                # in bursts, up to half a second apart at a low bitrate.
                proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self._child.note_error(f"pipe closed: {exc}")
        finally:
            self.live = self._accepting = False
        return not self._new_stream

    def _ended(self, end: Exit) -> None:
        if not end.stopping:
            log.warning("output %s down (%s); retrying in up to %.1f s", self.name,
                        self.last_error or "ffmpeg exited", end.delay_s)


class Fanout:
    """Reads the encoder's FLV and feeds every relay."""

    def __init__(self, make: Callable[[Preamble], list[Relay]]) -> None:
        self._preamble = Preamble()
        self.relays = make(self._preamble)

    def start(self) -> None:
        for relay in self.relays:
            relay.start()

    def pump(self, pipe: IO[bytes]) -> None:
        """One encoder run's output, until it ends; a new run is a new stream for every
        relay (they restart and rejoin at its first keyframe)."""
        self._preamble.header, self._preamble.tags = b"", {}
        for relay in self.relays:
            relay.feed_restart()
        for item in read_flv(pipe):
            if isinstance(item, bytes):
                self._preamble.header = item
                continue
            self._preamble.note(item)
            for relay in self.relays:
                relay.feed(item)

    def close(self) -> None:
        for relay in self.relays:
            relay.close()
