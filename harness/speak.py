"""Air texts through a real daemon to a real RTMP server, with a real client recording what the
server relays; decode the recording. Shared by the face tests and the lip-sync benchmark."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .daemon import DaemonProc, QueueNames, Receiver, publish
from .services import NginxRtmp


def _video_args(path: Path, pix_fmt: str) -> list[str]:
    # One picture per received frame: passthrough, or FFmpeg pads the start to its clock.
    return ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]


def decode_frames(path: Path, width: int, height: int, pix_fmt: str = "gray",
                  channels: int = 1) -> np.ndarray:
    out = subprocess.run(_video_args(path, pix_fmt), capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, channels)


def iter_frames(path: Path, width: int, height: int, pix_fmt: str = "gray",
                channels: int = 1) -> Iterator[np.ndarray]:
    """The received frames one at a time: memory bounded however long the recording."""
    proc = subprocess.Popen(_video_args(path, pix_fmt), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    size = width * height * channels
    try:
        while len(buf := proc.stdout.read(size)) == size:
            yield np.frombuffer(buf, np.uint8).reshape(height, width, channels)
    finally:
        proc.stdout.close()
        proc.wait()


def keyframes(path: Path) -> set[int]:
    """The received frames (in display order) that are keyframes: the encoder refreshes the
    whole picture on them, a little differently each time."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame",
         "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return {k for k, flag in enumerate(out.stdout.split()) if flag.startswith("1")}


def caption_ink(path: Path, width: int, height: int) -> np.ndarray:
    """Per received frame, against the frame before, how many pixels of the caption's band
    became white text from dark, or dark from white: the caption's ink. A word that appears
    turns the box's dark into its letters, and the box darkens what it covers. Only such
    swings count: the encoder's ripple, its keyframes (a GOP's new quantization moves the
    letters' anti-aliased edges across any one threshold, enough to outweigh a two-letter
    word) and the mouth's motion hardly ever swing a pixel that far. The band is the rows of
    the caption box (its bottom at 0.9 of the height, playout/scene/compose.py), not the whole
    lower third: the avatar framed head-and-shoulders has its chin at 0.7, and the jaw moves
    bright skin up to about 0.77. The face alive (breathing) moves the shoulders in the band:
    measure with it off."""
    ink, prev = [0], None
    top, bottom = round(height * 0.78), round(height * 0.92)
    for frame in iter_frames(path, width, height):
        luma = frame[top:bottom, :, 0]
        white, dark = luma > _INK, luma < _BOX
        if prev is not None:
            ink.append(int(((white & prev[1]) | (dark & prev[0])).sum()))
        prev = white, dark
    return np.array(ink)


_INK = 200  # luma of the caption's white letters
_BOX = 120  # what the box covers is darkened below this


def caption_lags(ink: np.ndarray, word_starts_s: list[float],
                 fps: int) -> tuple[list[int], list[int]]:
    """(the frames that hold each word's first sample, and per frame how many frames later
    the caption's ink changed most around it, short of the neighbouring words' frames)."""
    starts = sorted({int(t * fps) for t in word_starts_s})
    lags = []
    for i, f in enumerate(starts):
        lo = max(f - 3, starts[i - 1] + 1 if i else 0)
        hi = min(f + 3, starts[i + 1] - 1 if i + 1 < len(starts) else f + 3, len(ink) - 1)
        if lo <= hi:
            lags.append(max(range(lo, hi + 1), key=lambda k: ink[k]) - f)
    return starts, lags


def decode_audio(path: Path, rate: int = 16000) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-ac", "1",
         "-ar", str(rate), "-"], capture_output=True, check=True,
    ).stdout
    return np.frombuffer(out, np.int16)


def speak_and_record(
    workdir: Path, queues: QueueNames, rtmp_server: NginxRtmp, env: dict[str, str],
    texts: list[str], *, animator: str, width: int, height: int, fps: int = 30,
    idle_s: float = 1.0,
) -> tuple[DaemonProc, dict[str, Any], Path]:
    """Run the daemon at width x height, air each text after `idle_s` of idle, one after the
    other, stop; return the daemon, its last status and the recording a real RTMP client made
    from the stream's first frame (so stream frame n is frame n of the recording)."""
    url = rtmp_server.url(f"k{uuid.uuid4().hex}")
    # Connected before the daemon starts (however long that takes), so it records the stream
    # from its first frame.
    receiver = Receiver(url, workdir / "received.flv", idle_timeout_s=60)
    daemon = DaemonProc(workdir, queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url]),
        "AVATARCAST_FACE__ANIMATOR": animator,
        "AVATARCAST_AVATAR__AVATARS_DIR": str(workdir / "avatars"),
        "AVATARCAST_VIDEO__WIDTH": str(width), "AVATARCAST_VIDEO__HEIGHT": str(height),
        "AVATARCAST_VIDEO__BITRATE_KBPS": str(max(1500, width * height * 3 // 1000)),
        **env,
    })
    ids = [f"t{i}" for i in range(len(texts))]
    try:
        st = daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")
        assert st["animator"] == animator
        daemon.wait_for(lambda s: s["frames_sent"] >= idle_s * fps, 10 + idle_s, "idle first")
        for i, text in zip(ids, texts, strict=True):
            publish(queues.speak, {"type": "speak", "id": i, "text": text})
        st = daemon.wait_for(
            lambda s: s["state"] == "idle" and daemon.outcomes(s) == dict.fromkeys(ids, "aired"),
            60 + 20 * len(texts), "aired")
        daemon.wait_for(lambda s: s["frames_sent"] >= st["frames_sent"] + fps, 10, "idle tail")
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()
        receiver.finish()
    assert f"face animator: {animator}" in daemon.log()
    return daemon, st, receiver.out
