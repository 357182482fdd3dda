"""Benchmark: frames per second of the lite face animator at 480p, 720p and 1080p on one core.

Prepares the bundled portrait, synthesizes a sentence with piper, and times the animator
rendering the whole utterance (every frame warped as it would be on air), pinned to one CPU
core. Prints the median of several runs and the real-time factor against 30 fps.

Usage: .venv/bin/python -m bench.faces [--runs 5] [--screenshots docs]
It reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from avatarcast.audio import resample
from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import for_output
from avatarcast.face.base import ANIMATOR_RATE
from avatarcast.face.lite import LiteAnimator
from avatarcast.settings import Settings
from avatarcast.speech.chain import Speech, make_providers

FPS = 30
SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
TEXT = ("Good evening, and welcome to the stream. Tonight we talk about seven wonderful "
        "boots, a quiet harbour, and the weather tomorrow.")


async def speech_16k() -> np.ndarray:
    s = Settings(speech={"providers": ["piper"]})  # type: ignore[arg-type]
    sp = Speech(make_providers(s.speech, "ffmpeg"), s.speech, 48000)
    await sp.start()
    try:
        chunks = [c async for c in sp.synthesize(TEXT, None)]
    finally:
        await sp.aclose()
    return resample(np.concatenate(chunks), 48000, ANIMATOR_RATE)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--screenshots", type=Path, help="write an idle/mouth-open pair here")
    args = ap.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    audio = asyncio.run(speech_16k())
    frames = len(audio) * FPS // ANIMATOR_RATE
    with tempfile.TemporaryDirectory() as tmp:
        prepared = load(build(Path("assets/avatar.png"), "bench", Path(tmp),
                              BuildSettings(FPS, 600, 1920)))
    print(f"lite animator, {frames} frames of piper speech ({frames / FPS:.1f} s), one core")
    print(f"{'size':>6} {'fps (median)':>13} {'x real time':>12} {'ms/frame':>9}")
    for name, (w, h) in SIZES.items():
        avatar = for_output(prepared, w, h, keep_rgb=False)
        anim = LiteAnimator(FPS)
        anim.load(avatar)
        indices = [avatar.idle.index(k) for k in range(frames)]
        rates = []
        for _ in range(args.runs):
            t = time.perf_counter()
            out = [f for batch in anim.render(audio, indices) for f in batch]
            rates.append(len(out) / (time.perf_counter() - t))
        fps = statistics.median(rates)
        print(f"{name:>6} {fps:13.0f} {fps / FPS:12.1f} {1000 / fps:9.2f}")
        if args.screenshots and name == "720p":
            screenshots(args.screenshots, avatar.idle.frames[0], out, w, h)


def screenshots(directory: Path, idle: np.ndarray, talking: list[np.ndarray], w: int,
                h: int) -> None:
    diffs = [np.abs(f[:h].astype(np.int16) - idle[:h]).sum() for f in talking]
    widest = talking[int(np.argmax(diffs))]
    directory.mkdir(parents=True, exist_ok=True)
    x0, x1 = w // 2 - 240, w // 2 + 240  # the face sits in the middle third
    for name, frame in (("lite-idle.png", idle), ("lite-mouth-open.png", widest)):
        bgr = cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420)[: h // 2 + 40, x0:x1]
        cv2.imwrite(str(directory / name), bgr)
    print(f"screenshots: {directory}/lite-idle.png, {directory}/lite-mouth-open.png")


if __name__ == "__main__":
    main()
