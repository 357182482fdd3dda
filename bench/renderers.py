"""The renderers on their own: the speech providers' real-time factor, the lite animator's
frames per second at 480p/720p/1080p on one core, MuseTalk's per-frame time at batch 1/4/8
(full size, random weights) on whatever device runs it."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatarcast.avatar.alive.stage import Enliven
from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.face.base import ANIMATOR_RATE
from avatarcast.avatar.face.lite import LiteAnimator
from avatarcast.avatar.face.mouthtrack import MouthTrack, Timeline
from avatarcast.avatar.face.visemes import Phone, phones_from_alignment
from avatarcast.avatar.prepare import PreparedAvatar, build, load
from avatarcast.avatar.runtime import for_output
from avatarcast.media.audio import resample
from avatarcast.onair.segment import Segment
from avatarcast.onair.state import StreamState
from avatarcast.onair.tick import TickOutput
from avatarcast.playout.captions.track import CaptionTrack
from avatarcast.playout.captions.words import Word
from avatarcast.playout.scene.compose import Compositor
from avatarcast.playout.scene.spec import Scene
from avatarcast.settings import DEFAULT_IDLE_SOURCE, AliveSettings, Settings
from avatarcast.speech.base import SpeechError
from avatarcast.speech.chain import Speech, make_providers
from harness.openai_server import KEY, SpeechServer
from harness.talking import make_talking_video

from .session import FPS, SIZES

RATE = 48000
TEXT = ("Good evening, and welcome to the stream. Tonight we talk about seven wonderful "
        "boots, a quiet harbour, and the weather tomorrow.")
PORTRAIT = DEFAULT_IDLE_SOURCE
Speech16k = tuple[np.ndarray, MouthTrack]  # speech at 16 kHz and its mouth track


async def _synthesize(
    provider: str, runs: int, **extra: Any
) -> tuple[dict[str, Any], np.ndarray | None, list[Phone]]:
    s = Settings(speech={"providers": [provider], "retry_attempts": 1,  # type: ignore[arg-type]
                         **extra})
    speech = Speech(make_providers(s.speech, "ffmpeg"), s.speech, RATE)
    try:
        await speech.start()
    except SpeechError as exc:
        return {"unavailable": str(exc).splitlines()[0][:200]}, None, []
    rtf, first, pcm = [], [], None
    phones: list[Phone] = []
    try:
        for _ in range(runs):
            t = time.perf_counter()
            chunks: list[np.ndarray] = []
            phones, at = [], 0
            async for spoken in speech.synthesize(TEXT, None):
                if not chunks:
                    first.append(time.perf_counter() - t)
                if spoken.alignment:
                    phones += phones_from_alignment(spoken.alignment, at)[0]
                at += len(spoken.pcm)
                chunks.append(spoken.pcm)
            pcm = np.concatenate(chunks)
            rtf.append((time.perf_counter() - t) / (len(pcm) / RATE))
    except SpeechError as exc:
        return {"unavailable": str(exc).splitlines()[0][:200]}, None, []
    finally:
        await speech.aclose()
    return {"rtf": round(statistics.median(rtf), 4),
            "first_audio_ms": round(statistics.median(first) * 1000, 1),
            "audio_s": round(len(pcm) / RATE, 2) if pcm is not None else None}, pcm, phones


def tts(runs: int = 3) -> tuple[dict[str, Any], Speech16k]:
    """Each provider's real-time factor; piper's speech (at 16 kHz) and its mouth track for the
    animator figures."""
    out: dict[str, Any] = {}
    piper: tuple[np.ndarray | None, list[Phone]] = (None, [])
    for provider in ("piper", "espeak", "edge"):
        out[provider], pcm, phones = asyncio.run(_synthesize(provider, runs))
        if provider == "piper":
            piper = (pcm, phones)
    # Speech over HTTP: the openai provider against a local OpenAI-compatible server (which
    # speaks with espeak-ng, streamed in 0.1 s pieces): what the HTTP path itself adds.
    with SpeechServer() as server:
        out["openai (local server)"], _, _ = asyncio.run(_synthesize(
            "openai", runs, openai_base_url=server.base_url, openai_api_key=KEY))
    pcm, phones = piper
    if pcm is None:
        raise RuntimeError(f"piper is needed for the animator figures: {out['piper']}")
    audio_16k = resample(pcm, RATE, ANIMATOR_RATE)
    frames = len(pcm) // (RATE // FPS)
    timeline = Timeline(RATE // FPS, FPS)
    timeline.add(phones)
    track = timeline.track(0, frames, audio_16k[: frames * ANIMATOR_RATE // FPS], ANIMATOR_RATE)
    return out, (audio_16k[: frames * ANIMATOR_RATE // FPS], track)


def lite_figures(speech: Speech16k) -> dict[str, Any]:
    """The lite animator's cost with the still image's own mouth, and with a mouth atlas
    built from a talking reference made here (harness/talking.py); and the remote animator
    against a face server on this machine."""
    with tempfile.TemporaryDirectory(prefix="avatarcast-talking-") as tmp:
        talking = make_talking_video(Path(tmp) / "talk.mp4")
        return {"lite": lite_fps(speech), "lite_atlas": lite_fps(speech, talking=talking),
                "remote": remote_fps(speech)}


def remote_fps(speech: Speech16k, runs: int = 3) -> dict[str, Any]:
    """Frames per second the remote animator gets at 720p from `avatarcast serve-face` (the
    lite animator) on this same machine: the wire format's cost, HTTP, patches and all."""
    from avatarcast.avatar.face.remote import RemoteAnimator
    from harness.services import free_port, stop_process, wait_port

    audio_16k, track = speech
    w, h = SIZES["720p"]
    with tempfile.TemporaryDirectory(prefix="avatarcast-remote-") as tmp:
        avatars, port = Path(tmp) / "avatars", free_port()
        prepared = load(build(PORTRAIT, "remote", avatars, BuildSettings(FPS, 600, 1920)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
        env.update({"AVATARCAST_AVATAR__AVATARS_DIR": str(avatars),
                    "AVATARCAST_FACE__ANIMATOR": "lite"})
        server = subprocess.Popen([sys.executable, "-m", "avatarcast", "serve-face", "--port",
                                   str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_port(port, 30)
            anim = RemoteAnimator(f"http://127.0.0.1:{port}", FPS, 10.0)
            avatar = for_output(prepared, w, h, keep_rgb=False)
            anim.load(avatar)
            indices = [avatar.idle.index(k) for k in range(len(track))]
            rates = []
            for _ in range(runs):
                t = time.perf_counter()
                n = sum(len(b) for b in anim.render(audio_16k, indices, track))
                rates.append(n / (time.perf_counter() - t))
            if anim.frames_local:
                raise RuntimeError(f"{anim.frames_local} frames fell back to lite")
        finally:
            stop_process(server)
    fps = statistics.median(rates)
    return {"720p": {"fps": round(fps, 1), "x_real_time": round(fps / FPS, 2)}}


def lite_fps(speech: Speech16k, runs: int = 3, talking: Path | None = None) -> dict[str, Any]:
    """The lite animator on piper's speech with its phoneme track, pinned to one core, as the
    target says (the affinity is restored afterwards); and burning captions in, per frame.
    With a talking reference, the avatar has a mouth atlas and the lite animator pastes its
    mouths instead of warping the still's own."""
    audio_16k, track = speech
    cores = os.sched_getaffinity(0)
    threads = cv2.getNumThreads()
    os.sched_setaffinity(0, {min(cores)})
    cv2.setNumThreads(1)
    frames = len(track)
    moving = float(np.mean((track.jaw > 1e-3) | (track.press > 1e-3) | (track.tuck > 1e-3)))
    out: dict[str, Any] = {"frames": frames, "frames_moving": round(moving, 3)}
    with tempfile.TemporaryDirectory() as tmp:
        # The cache stays while the animator runs: the atlas is read from it.
        prepared = load(build(PORTRAIT, "bench", Path(tmp), BuildSettings(FPS, 600, 1920),
                              talking=talking))
        try:
            for name, (w, h) in SIZES.items():
                avatar = for_output(prepared, w, h, keep_rgb=False)
                anim = LiteAnimator(FPS)
                anim.load(avatar)
                if anim.mouth != ("atlas" if talking else "still"):
                    raise RuntimeError(f"the lite animator used its {anim.mouth} mouth")
                indices = [avatar.idle.index(k) for k in range(frames)]
                rates, per_frame = [], []
                for _ in range(runs):
                    t = time.perf_counter()
                    n, last = 0, t
                    for batch in anim.render(audio_16k, indices, track):
                        now = time.perf_counter()
                        per_frame.append((now - last) / len(batch) * 1000)
                        n, last = n + len(batch), now
                    rates.append(n / (time.perf_counter() - t))
                fps = statistics.median(rates)
                out[name] = {"fps": round(fps, 1), "x_real_time": round(fps / FPS, 2),
                             "ms_per_frame_median": round(statistics.median(per_frame), 2),
                             "ms_per_frame_p95": round(float(np.percentile(per_frame, 95)), 2),
                             "captions_ms_per_frame": _captions_ms(avatar.idle.frames[0], w, h),
                             **_motion_ms(prepared, w, h)}
        finally:
            os.sched_setaffinity(0, cores)
            cv2.setNumThreads(threads)
    return out


def _motion_ms(prepared: PreparedAvatar, w: int, h: int, seconds: int = 20) -> dict[str, float]:
    """The face's motion on air (blinks, sway, breathing) drawn on each tick, at the default
    settings, as the pacer thread does it: ms a tick, and ms on the ticks of a blink."""
    avatar = for_output(prepared, w, h, keep_rgb=False, alive=True)
    stage = Enliven(AliveSettings(), FPS, lambda: StreamState.IDLE)
    frame = avatar.idle.frames[0]
    every, blinking = [], []
    for n in range(seconds * FPS):
        out = TickOutput(frame, np.zeros(RATE // FPS, np.int16), shown=avatar.idle)
        t = time.perf_counter()
        stage(n, out)
        ms = (time.perf_counter() - t) * 1000
        every.append(ms)
        if stage.driver.blinks.blinking:
            blinking.append(ms)
    return {"motion_ms_per_frame_median": round(statistics.median(every), 2),
            "motion_ms_per_frame_p95": round(float(np.percentile(every, 95)), 2),
            "motion_ms_blink_frame_median": round(statistics.median(blinking), 2)
            if blinking else float("nan")}


def _captions_ms(frame: np.ndarray, w: int, h: int) -> float:
    """The scene's captions layer over one frame, alone (the layer for each new word made
    once), as the pacer thread lays it; the frame copy it starts with included."""
    seg = Segment("bench", 0)
    seg.captions = track = CaptionTrack(spf=RATE // FPS, fps=FPS, max_chars=42)
    words = TEXT.split()
    track.add([Word(i * 8000, (i + 1) * 8000, t) for i, t in enumerate(words)])
    scene = Compositor(Scene(), Path.cwd(), w, h, FPS, captions=True)
    silence = np.zeros((RATE // FPS, 2), np.int16)
    n = len(words) * 8000 // (RATE // FPS)
    t = time.perf_counter()
    for k in range(n):
        scene(k, TickOutput(frame, silence, seg, index=k))
    return round((time.perf_counter() - t) / n * 1000, 3)


def musetalk(batches: tuple[int, ...] = (1, 4, 8), runs: int = 1) -> dict[str, Any]:
    from .musetalk import time_batches

    return time_batches(batches, runs)
