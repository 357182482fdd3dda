"""A talking reference video, made here, for the mouth atlas: the default avatar reads Harvard
sentences (phonetically balanced) in piper's voice, its mouth moved by the lite animator's
still-image warp from piper's phoneme timings, with a slow sway of the head so the atlas has to
align every frame. It stands in for the minute of a real person reading aloud that a user
would record; nothing is downloaded.

  python -m harness.talking OUT.mp4 [SENTENCES]
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import cv2
import numpy as np

from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.face.base import ANIMATOR_RATE
from avatarcast.avatar.face.lite import LiteAnimator
from avatarcast.avatar.face.mouthtrack import Timeline
from avatarcast.avatar.face.visemes import phones_from_alignment
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import for_output
from avatarcast.media.audio import resample
from avatarcast.settings import DEFAULT_IDLE_SOURCE, SpeechSettings
from avatarcast.speech.base import Spoken
from avatarcast.speech.chain import Speech, make_providers

from .daemon import VOICE_CACHE

HARVARD = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
    "It's easy to tell the depth of a well. These days a chicken leg is a rare dish. "
    "Rice is often served in round bowls. The juice of lemons makes fine punch. "
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage. "
    "Four hours of steady work faced us. A large size in stockings is hard to sell."
)
RATE = 48_000


async def _speak(text: str, voices: Path) -> list[Spoken]:
    settings = SpeechSettings(providers=["piper"])
    speech = Speech(make_providers(settings, "ffmpeg", voices), settings, RATE)
    await speech.start()
    try:
        return [s async for s in speech.synthesize(text, None)]
    finally:
        await speech.aclose()


def _sway(k: int, fps: int, size: int) -> np.ndarray:
    t = k / fps
    angle = 1.5 * np.sin(2 * np.pi * t / 5.0)
    m = cv2.getRotationMatrix2D((size / 2, size * 0.55), angle, 1.0 + 0.01 * np.sin(t))
    m[:, 2] += (3 * np.sin(2 * np.pi * t / 7.0), 2 * np.sin(2 * np.pi * t / 4.0))
    return m


def make_talking_video(out: Path, *, sentences: int = 10, fps: int = 30,
                       voices: Path | None = None) -> Path:
    text = ". ".join(s.strip().rstrip(".") for s in HARVARD.split(". ")[:sentences]) + "."
    voices = voices or VOICE_CACHE
    spoken = asyncio.run(_speak(text, voices))
    size = 512
    with tempfile.TemporaryDirectory(prefix="avatarcast-talking-") as tmp:
        work = Path(tmp)
        directory = build(DEFAULT_IDLE_SOURCE, "reference", work / "avatars",
                          BuildSettings(fps=fps, max_frames=1, max_side=size))
        avatar = for_output(load(directory), size, size, keep_rgb=False)
        animator = LiteAnimator(fps)
        animator.load(avatar)
        spf = RATE // fps
        timeline = Timeline(spf, fps)
        at = 0
        for s in spoken:
            if s.alignment:
                timeline.add(phones_from_alignment(s.alignment, at)[0])
            at += len(s.pcm)
        pcm = np.concatenate([s.pcm for s in spoken])
        n = len(pcm) // spf
        pcm = pcm[: n * spf]
        wav = work / "speech.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm.astype(np.int16).tobytes())
        audio_16k = resample(pcm, RATE, ANIMATOR_RATE)
        mouth = timeline.track(0, n, audio_16k, ANIMATOR_RATE)
        enc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
             "-pix_fmt", "bgr24", "-s", f"{size}x{size}", "-r", str(fps), "-i", "pipe:0",
             "-i", str(wav), "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(out)],
            stdin=subprocess.PIPE)
        assert enc.stdin is not None
        k = 0
        for batch in animator.render(audio_16k, [0] * n, mouth):
            for frame in batch:
                bgr = cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420)
                bgr = cv2.warpAffine(bgr, _sway(k, fps, size), (size, size),
                                     borderMode=cv2.BORDER_REPLICATE)
                enc.stdin.write(bgr.tobytes())
                k += 1
        enc.stdin.close()
        if enc.wait() != 0:
            raise RuntimeError(f"ffmpeg could not write {out}")
    return out


def atlas_avatar_env(workdir: Path, talking: Path | None = None, fps: int = 30) -> dict[str, str]:
    """Prepare the portrait with a mouth atlas (from `talking`, or a reference made now) as
    avatar "talker" in workdir/avatars, where speak_and_record's daemon looks; the daemon's
    environment for it."""
    if talking is None:
        talking = make_talking_video(workdir / "talking.mp4", fps=fps)
    build(DEFAULT_IDLE_SOURCE, "talker", workdir / "avatars",
          BuildSettings(fps=fps, max_frames=600, max_side=1920), talking=talking)
    return {"AVATARCAST_AVATAR__ID": "talker"}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print(make_talking_video(target, sentences=count))
