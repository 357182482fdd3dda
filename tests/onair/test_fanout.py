"""A relay of the fan-out on its own, with real FFmpeg: a live FLV stream (a small FFmpeg
encoder at real time) read by the fan-out, and one relay (`ffmpeg -c copy`) recording it to a
file per run. Its child killed, the relay comes back and records on; a new stream from the
encoder restarts it at once, without counting a restart. Every wait for an event is long."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from avatarcast.onair.fanout import Fanout, Preamble, Relay, Tag
from avatarcast.onair.ffmpeg_args import Target, relay_args
from harness.daemon import packets

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def _source() -> subprocess.Popen[bytes]:
    """FLV at real time on stdout: 64x48 at 10 fps, a keyframe every second, AAC sound."""
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin",
         "-re", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
         "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-f", "flv", "pipe:1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


class Recording:
    """A fan-out with one relay that records each of its runs to rec-N.mkv."""

    def __init__(self, folder: Path) -> None:
        self.files: list[Path] = []
        self.folder = folder

        def where() -> str:
            self.files.append(self.folder / f"rec-{len(self.files) + 1}.mkv")
            return str(self.files[-1])

        target = Target("rec", where, "matroska")

        def make(preamble: Preamble) -> list[Relay]:
            self.preamble = preamble
            return [Relay(name="rec", args=lambda: relay_args(FFMPEG, target), servers=[],
                          backoff_s=(0.2, 0.2), stable_after_s=30.0, preamble=preamble)]

        self.fanout = Fanout(make)
        (self.relay,) = self.fanout.relays
        self.sources: list[subprocess.Popen[bytes]] = []
        self.pumps: list[threading.Thread] = []

    def play(self) -> subprocess.Popen[bytes]:
        """A new stream from the encoder, pumped to the relay until it ends."""
        source = _source()
        assert source.stdout is not None
        self.sources.append(source)
        self.pumps.append(threading.Thread(target=self.fanout.pump, args=(source.stdout,)))
        self.pumps[-1].start()
        return source

    def start(self) -> None:
        """The first stream, then the relay: it joins that stream at its first keyframe.
        (Started the other way round, the fan-out's news of a new stream could reach the
        relay while its first run starts, and that run would be taken for one ended to join
        a new stream: its end not counted as a restart.)"""
        self.play()
        until(lambda: self.preamble.header != b"")  # the pump has begun the stream
        self.fanout.start()

    def close(self) -> None:
        for source in self.sources:
            if source.poll() is None:
                source.terminate()
            source.wait(10)
        for pump in self.pumps:
            pump.join(10)
        self.fanout.close()


def until(what: Callable[[], bool], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not what():
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.05)


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[Recording]:
    rec = Recording(tmp_path)
    try:
        yield rec
    finally:
        rec.close()


def _relay_child(path: Path) -> int:
    """The pid of this process's child that writes `path`."""
    found = subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", str(path)],
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(found) == 1, found
    return int(found[0])


def test_a_relay_whose_ffmpeg_is_killed_comes_back_and_records_on(
        recording: Recording, caplog: pytest.LogCaptureFixture) -> None:
    relay = recording.relay
    recording.start()
    assert "relay-rec" in {t.name for t in threading.enumerate()}
    until(lambda: relay.live)
    os.kill(_relay_child(recording.files[0]), signal.SIGKILL)
    until(lambda: relay.restarts == 1 and relay.live and len(recording.files) == 2)
    time.sleep(2)  # two more keyframes' worth recorded by the second run
    recording.close()
    assert relay.restarts == 1 and not relay.live
    assert [f.name for f in recording.files] == ["rec-1.mkv", "rec-2.mkv"]
    assert len(packets(recording.files[1], "v")) >= 5
    assert len(packets(recording.files[1], "a")) >= 5
    assert any(r.getMessage().startswith("output rec down (") for r in caplog.records)
    assert "relay-rec" not in {t.name for t in threading.enumerate()}


def test_a_new_stream_restarts_the_relay_at_once_without_counting(
        recording: Recording) -> None:
    relay = recording.relay
    recording.start()
    first = recording.sources[0]
    until(lambda: relay.live)
    first.terminate()  # the encoder's run ends; the relay waits for the next stream
    first.wait(10)
    recording.pumps[0].join(10)
    recording.play()
    until(lambda: relay.live and len(recording.files) == 2)
    recording.close()
    assert relay.restarts == 0
    for f in recording.files:
        assert len(packets(f, "v")) >= 1, f


# A stand-in for the relay's FFmpeg: notes how many bytes it has received, as they come.
_COUNTING_CHILD = (
    "import os, sys\n"
    "total = 0\n"
    "while chunk := os.read(0, 65536):\n"
    "    total += len(chunk)\n"
    "    with open(sys.argv[1], 'w') as f:\n"
    "        f.write(str(total))\n"
)


def _video_tag(timestamp: int, keyframe: bool, size: int = 200) -> Tag:
    data = bytes([0x17 if keyframe else 0x27, 0x01]) + bytes(size)  # AVC frame, not config
    head = bytes([9]) + len(data).to_bytes(3, "big") + timestamp.to_bytes(3, "big") + bytes(4)
    return Tag(kind=9, timestamp=timestamp, raw=head + data + (11 + len(data)).to_bytes(4, "big"))


def test_each_tag_reaches_the_relays_ffmpeg_at_once(tmp_path: Path) -> None:
    """Not held in a pipe's buffer until more come: at a low bitrate that sent the stream in
    bursts half a second apart (seen by a live client as a stalling output)."""
    got = tmp_path / "received"
    relay = Relay(name="probe", args=lambda: [sys.executable, "-c", _COUNTING_CHILD, str(got)],
                  servers=[], backoff_s=(0.2, 0.2), stable_after_s=30.0, preamble=Preamble())
    relay.start()
    try:
        sent = 0
        for n in range(4):
            tag = _video_tag(33 * n, keyframe=n == 0)
            until(lambda: relay._accepting)  # its child runs and takes tags
            relay.feed(tag)
            sent += len(tag.raw)
            # Far less than a pipe's buffer: it arrives only if it was sent on its own.
            until(lambda want=str(sent): got.exists() and got.read_text() == want, limit_s=10)
    finally:
        relay.close()
