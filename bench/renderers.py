"""The renderers on their own: the speech providers' real-time factor, the lite animator's
frames per second at 480p/720p/1080p on one core, MuseTalk's per-frame time at batch 1/4/8
(full size, random weights) on whatever device runs it."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import for_output
from avatarcast.face.base import ANIMATOR_RATE
from avatarcast.face.lite import LiteAnimator
from avatarcast.face.mouthtrack import from_audio
from avatarcast.onair.audio import resample
from avatarcast.settings import DEFAULT_IDLE_SOURCE, Settings
from avatarcast.speech.base import SpeechError
from avatarcast.speech.chain import Speech, make_providers

from .session import FPS, SIZES

RATE = 48000
TEXT = ("Good evening, and welcome to the stream. Tonight we talk about seven wonderful "
        "boots, a quiet harbour, and the weather tomorrow.")
PORTRAIT = DEFAULT_IDLE_SOURCE


async def _synthesize(provider: str, runs: int) -> tuple[dict[str, Any], np.ndarray | None]:
    s = Settings(speech={"providers": [provider], "retry_attempts": 1})  # type: ignore[arg-type]
    speech = Speech(make_providers(s.speech, "ffmpeg"), s.speech, RATE)
    try:
        await speech.start()
    except SpeechError as exc:
        return {"unavailable": str(exc).splitlines()[0][:200]}, None
    rtf, first, pcm = [], [], None
    try:
        for _ in range(runs):
            t = time.perf_counter()
            chunks = []
            async for spoken in speech.synthesize(TEXT, None):
                c = spoken.pcm
                if not chunks:
                    first.append(time.perf_counter() - t)
                chunks.append(c)
            pcm = np.concatenate(chunks)
            rtf.append((time.perf_counter() - t) / (len(pcm) / RATE))
    except SpeechError as exc:
        return {"unavailable": str(exc).splitlines()[0][:200]}, None
    finally:
        await speech.aclose()
    return {"rtf": round(statistics.median(rtf), 4),
            "first_audio_ms": round(statistics.median(first) * 1000, 1),
            "audio_s": round(len(pcm) / RATE, 2) if pcm is not None else None}, pcm


def tts(runs: int = 3) -> tuple[dict[str, Any], np.ndarray]:
    out: dict[str, Any] = {}
    piper_pcm = None
    for provider in ("piper", "espeak", "edge"):
        out[provider], pcm = asyncio.run(_synthesize(provider, runs))
        if provider == "piper":
            piper_pcm = pcm
    if piper_pcm is None:
        raise RuntimeError(f"piper is needed for the animator figures: {out['piper']}")
    return out, resample(piper_pcm, RATE, ANIMATOR_RATE)


def lite_fps(audio_16k: np.ndarray, runs: int = 3) -> dict[str, Any]:
    """Pinned to one core, as the target says; the affinity is restored afterwards."""
    cores = os.sched_getaffinity(0)
    threads = cv2.getNumThreads()
    os.sched_setaffinity(0, {min(cores)})
    cv2.setNumThreads(1)
    frames = len(audio_16k) * FPS // ANIMATOR_RATE
    out: dict[str, Any] = {"frames": frames}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prepared = load(build(PORTRAIT, "bench", Path(tmp), BuildSettings(FPS, 600, 1920)))
        for name, (w, h) in SIZES.items():
            avatar = for_output(prepared, w, h, keep_rgb=False)
            anim = LiteAnimator(FPS)
            anim.load(avatar)
            indices = [avatar.idle.index(k) for k in range(frames)]
            track = from_audio(audio_16k, frames, FPS, ANIMATOR_RATE)
            rates = []
            for _ in range(runs):
                t = time.perf_counter()
                n = sum(len(b) for b in anim.render(audio_16k, indices, track))
                rates.append(n / (time.perf_counter() - t))
            fps = statistics.median(rates)
            out[name] = {"fps": round(fps, 1), "x_real_time": round(fps / FPS, 2)}
    finally:
        os.sched_setaffinity(0, cores)
        cv2.setNumThreads(threads)
    return out


def musetalk(batches: tuple[int, ...] = (1, 4, 8), runs: int = 1) -> dict[str, Any]:
    from .musetalk import time_batches

    return time_batches(batches, runs)
