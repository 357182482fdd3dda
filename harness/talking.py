"""A talking reference video, made here, for the mouth atlas: the default avatar reads Harvard
sentences (phonetically balanced) in piper's voice, with mouths drawn for each class of sound
by harness/mouths.py (not by any animator under test: shapes, colours and timing rules of its
own, from piper's phoneme timings), and a sway of the head so the atlas has to align every
frame. It stands in for the minute of a real person reading aloud that a user would record;
nothing is downloaded (no video of a real face speaking is at hand offline).

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
from avatarcast.avatar.prepare import build
from avatarcast.avatar.track import FaceTracker
from avatarcast.settings import DEFAULT_IDLE_SOURCE, SpeechSettings
from avatarcast.speech.base import Spoken
from avatarcast.speech.chain import Speech, make_providers

from .daemon import VOICE_CACHE
from .mouths import MouthPainter, Phone, frame_kinds, phones, shapes_for

# Harvard sentences, the first four (the tests' reference) rich in closures, open vowels and
# rounded ones.
HARVARD = (
    "The birch canoe slid on the smooth planks. The box was thrown beside the parked truck. "
    "The hogs were fed chopped corn and garbage. Glue the sheet to the dark blue background. "
    "Four hours of steady work faced us. It's easy to tell the depth of a well. "
    "These days a chicken leg is a rare dish. Rice is often served in round bowls. "
    "The juice of lemons makes fine punch. A large size in stockings is hard to sell."
)
RATE = 48_000
SIZE = 512


async def _speak(text: str, voices: Path) -> list[Spoken]:
    settings = SpeechSettings(providers=["piper"])
    speech = Speech(make_providers(settings, "ffmpeg", voices), settings, RATE)
    await speech.start()
    try:
        return [s async for s in speech.synthesize(text, None)]
    finally:
        await speech.aclose()


def speak(text: str, voices: Path | None = None) -> tuple[np.ndarray, list[Phone], list[Spoken]]:
    """Piper reading `text` at RATE: the samples, its sounds with their classes
    (harness/mouths.py), and the chunks as the daemon gets them (with phoneme timings)."""
    spoken = asyncio.run(_speak(text, voices or VOICE_CACHE))
    sounds: list[Phone] = []
    at = 0
    for s in spoken:
        if not s.alignment:
            raise RuntimeError("piper gave no phoneme timings (is the onnx package installed?)")
        sounds += phones(s.alignment, at)
        at += len(s.pcm)
    return np.concatenate([s.pcm for s in spoken]), sounds, spoken


def sway(k: int, fps: int, size: int) -> np.ndarray:
    """The head's motion on frame k: a few degrees and pixels, on periods that never line up,
    so the mouths' alignment matters."""
    t = k / fps
    angle = 3.0 * np.sin(2 * np.pi * t / 5.3)
    m = cv2.getRotationMatrix2D((size / 2, size * 0.55), angle, 1.0 + 0.015 * np.sin(t))
    m[:, 2] += (7 * np.sin(2 * np.pi * t / 7.1), 5 * np.sin(2 * np.pi * t / 4.3))
    return m


def make_talking_video(out: Path, *, sentences: int = 10, fps: int = 30,
                       voices: Path | None = None) -> Path:
    text = ". ".join(s.strip().rstrip(".") for s in HARVARD.split(". ")[:sentences]) + "."
    pcm, sounds, _ = speak(text, voices)
    spf = RATE // fps
    n = len(pcm) // spf
    pcm = pcm[: n * spf]
    bgr = cv2.imread(str(DEFAULT_IDLE_SOURCE))
    bgr = cv2.resize(bgr, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    landmarks = FaceTracker().find(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if landmarks is None:
        raise RuntimeError(f"no face in {DEFAULT_IDLE_SOURCE}")
    painter = MouthPainter(bgr, landmarks)
    shapes = shapes_for(frame_kinds(sounds, n, spf))
    with tempfile.TemporaryDirectory(prefix="avatarcast-talking-") as tmp:
        wav = Path(tmp) / "speech.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm.astype(np.int16).tobytes())
        enc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
             "-pix_fmt", "bgr24", "-s", f"{SIZE}x{SIZE}", "-r", str(fps), "-i", "pipe:0",
             "-i", str(wav), "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(out)],
            stdin=subprocess.PIPE)
        assert enc.stdin is not None
        for k in range(n):
            frame = cv2.warpAffine(painter.draw(shapes[k]), sway(k, fps, SIZE), (SIZE, SIZE),
                                   borderMode=cv2.BORDER_REPLICATE)
            enc.stdin.write(frame.tobytes())
        enc.stdin.close()
        if enc.wait() != 0:
            raise RuntimeError(f"ffmpeg could not write {out}")
    return out


def atlas_avatar_env(workdir: Path, talking: Path | None = None, fps: int = 30) -> dict[str, str]:
    """Prepare the portrait with a mouth atlas (from `talking`, or a reference made now) as
    avatar "talker" in workdir/avatars, where speak_and_record's daemon looks; the daemon's
    environment for it. Framed for a 16:9 output, as the daemon's default (a daemon of
    another aspect would prepare it again, atlas and all)."""
    if talking is None:
        talking = make_talking_video(workdir / "talking.mp4", fps=fps)
    build(DEFAULT_IDLE_SOURCE, "talker", workdir / "avatars",
          BuildSettings(fps=fps, max_frames=600, max_side=1920), talking=talking)
    return {"AVATARCAST_AVATAR__ID": "talker"}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print(make_talking_video(target, sentences=count))
