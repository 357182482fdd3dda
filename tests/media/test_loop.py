"""The looping video background: source order and a seamless wrap, cover scaling, ticks that
skip or come too soon, a decoder that dies and comes back, bad files, and closing."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from avatarcast.media.frames import Frame
from avatarcast.media.loop import LoopError, LoopingVideo

W, H, FPS = 64, 48, 10
STEP = 20  # Y of source frame i is 16 + STEP * i


def make_clip(path: Path, frames: list[Frame], width: int, height: int, fps: int,
              codec: list[str]) -> Path:
    data = b"".join(f.tobytes() for f in frames)
    subprocess.run(["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-f", "rawvideo",
                    "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-r", str(fps),
                    "-i", "pipe:0", *codec, str(path)], input=data, check=True)
    return path


def numbered(count: int, width: int = W, height: int = H) -> list[Frame]:
    """Frames whose brightness says which they are."""
    out = []
    for i in range(count):
        f = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
        f[:height] = 16 + STEP * i
        out.append(f)
    return out


def index(frame: Frame) -> int:
    return round((float(frame[:H].mean()) - 16) / STEP)


def ffmpeg_children() -> set[int]:
    """FFmpeg processes this test process started, zombies (not reaped) included."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == os.getpid() and comm == "ffmpeg":
            found.add(int(entry))
    return found


def until(cond: Callable[[], bool], timeout_s: float, step: Callable[[], None] | None = None
          ) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        if step is not None:
            step()
        time.sleep(0.01)
    return cond()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "ten.mkv", numbered(10), W, H, FPS, ["-c:v", "ffv1"])


@pytest.fixture
def player(clip: Path) -> Iterator[LoopingVideo]:
    p = LoopingVideo(clip, W, H, FPS)
    p.start()
    yield p
    p.close()


@pytest.mark.parametrize("codec", [["-c:v", "ffv1"], ["-c:v", "libx264", "-crf", "10"]],
                         ids=["ffv1", "h264"])
def test_frames_loop_in_source_order_without_a_seam(tmp_path: Path, codec: list[str]) -> None:
    ext = ".mkv" if codec[1] == "ffv1" else ".mp4"
    path = make_clip(tmp_path / f"ten{ext}", numbered(10), W, H, FPS, codec)
    p = LoopingVideo(path, W, H, FPS)
    p.start()
    try:
        seen: list[int] = []
        frames: list[Frame] = []
        n = 0
        deadline = time.monotonic() + 10
        while len(seen) < 27 and time.monotonic() < deadline:
            late = p.late
            f = p.at(n)
            n += 1
            if p.late == late:  # a late tick takes no frame: the rest keep their order
                seen.append(index(f))
                frames.append(f)
            time.sleep(0.002)
        assert seen == [i % 10 for i in range(27)]
        assert all(f.shape == (H * 3 // 2, W) and f.dtype == np.uint8 for f in frames)
        assert not np.shares_memory(frames[0], frames[1]) and not frames[0].flags.writeable
        # (a ring of buffers: the one shown is not filled again while newer ones wait)
        assert np.all(frames[0][H:] == 128)  # grey stays grey
    finally:
        p.close()


def test_another_aspect_ratio_is_scaled_to_cover_and_cropped(tmp_path: Path) -> None:
    # A square source with bright bands along its top and bottom edges: covering a 4:3 frame
    # crops them away (letterboxing would keep them, and add bars of its own).
    src = np.full((96 * 3 // 2, 96), 128, dtype=np.uint8)
    src[:96] = 100
    src[:6] = src[90:96] = 235
    path = make_clip(tmp_path / "square.mkv", [src] * 3, 96, 96, FPS, ["-c:v", "ffv1"])
    p = LoopingVideo(path, W, H, FPS)
    p.start()
    try:
        f = p.at(0)
        assert f.shape == (H * 3 // 2, W)
        assert np.abs(f[:H].astype(int) - 100).max() <= 3
    finally:
        p.close()


def test_ticks_skip_repeat_and_hold_when_late(player: LoopingVideo) -> None:
    time.sleep(0.3)  # let the queue fill
    first = player.at(0)
    assert index(first) == 0
    assert player.at(0) is first  # the same tick again: the same frame
    time.sleep(0.3)
    assert index(player.at(3)) == 3  # two ticks dropped: two frames skipped
    time.sleep(0.3)
    assert index(player.at(5)) == 5
    late = player.late
    shown = player.at(5)
    results = []
    for n in range(6, 3000):  # far faster than FFmpeg can keep up
        before = player.late
        f = player.at(n)
        results.append((player.late > before, f, shown))
        shown = f
    assert player.late > late
    assert all(f is prev for was_late, f, prev in results if was_late)


def test_a_killed_decoder_is_restarted(player: LoopingVideo,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="avatarcast.media.loop")
    old = player._proc
    assert old is not None
    ticks = iter(range(10**6))
    player.at(next(ticks))
    old.kill()
    saw_failed = []

    def tick() -> None:
        player.at(next(ticks))
        if player.failed:
            saw_failed.append(player.failed)

    assert until(lambda: player.restarts == 1 and player.failed is None, 5, tick)
    assert saw_failed
    assert any("FFmpeg stopped" in r.getMessage() for r in caplog.records)
    assert old.poll() is not None and old.pid not in ffmpeg_children()
    assert player._proc is not old
    late = player.late
    for _ in range(20):
        tick()
        time.sleep(0.01)
    assert player.late - late < 20  # frames flow again


def test_start_fails_on_a_missing_file_and_on_a_non_video(tmp_path: Path) -> None:
    before = ffmpeg_children()
    with pytest.raises(LoopError, match="not found"):
        LoopingVideo(tmp_path / "nope.mp4", W, H, FPS).start(timeout_s=3)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    p = LoopingVideo(text, W, H, FPS)
    with pytest.raises(LoopError, match="Invalid data") as err:
        p.start(timeout_s=3)
    assert str(text) in str(err.value)
    assert p.closed and p.restarts == 0
    assert ffmpeg_children() <= before


def test_retired_player_closes_itself_when_unused(clip: Path) -> None:
    p = LoopingVideo(clip, W, H, FPS, idle_close_s=0.5)
    p.start()
    proc = p._proc
    assert proc is not None
    last = p.at(0)
    p.retire()
    assert until(lambda: p.closed, 0.5 + 2)
    assert proc.poll() is not None and proc.pid not in ffmpeg_children()
    assert p.at(1) is last
    p.close()
    p.close()


def test_close_stops_the_decoder_and_is_idempotent(player: LoopingVideo) -> None:
    proc = player._proc
    assert proc is not None
    player.close()
    assert player.closed and proc.poll() is not None and proc.pid not in ffmpeg_children()
    player.close()
    assert player.closed
