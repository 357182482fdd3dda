"""Stills of a full scene from the received stream (issue 30): the daemon at 720p with a scene
file (a logo, the lower third, a ticker, a clock, the AI label, a music bed), a real RTMP
client records it, and a frame at rest and one mid-sentence are kept as PNGs.

  python -m bench scene-stills   writes docs/img/scene-idle.png, docs/img/scene-speaking.png
                                 and docs/img/scene-video.png (over a looping video)
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import cv2
from PIL import Image, ImageDraw

from harness.daemon import QueueNames, delete_queues
from harness.services import NginxRtmp, ensure_rabbitmq
from harness.speak import iter_frames, speak_and_record

from .report import ROOT
from .scene_video import clip
from .session import FPS, SIZES

SCENE = """
[logo]
path = "logo.png"
corner = "top-left"
height = 0.14

[lower_third]
title = "Avatar Live"
subtitle = "Your questions, answered every night"

[ticker]
text = "Send your questions in the chat  -  new episodes every night  -  avatarcast  "
speed = 0.08

[clock]
timezone = "Europe/Lisbon"

[music]
folder = "music"
"""
TEXT = "Good evening, and welcome to the show. Tonight we answer your questions."


def props(tmp: Path, background: str | None = None) -> Path:
    """The scene file and what it names (a logo, a music bed) written into `tmp`; with a
    background behind the person too: a colour (#rrggbb), or `video` (a moving backdrop)."""
    logo = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    d = ImageDraw.Draw(logo)
    d.ellipse((8, 8, 248, 248), fill=(214, 54, 38, 255))
    d.ellipse((70, 70, 186, 186), fill=(255, 255, 255, 255))
    logo.save(tmp / "logo.png")
    (tmp / "music").mkdir(exist_ok=True)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=220:sample_rate=48000:duration=30", "-af",
                    "tremolo=f=2:d=0.6", str(tmp / "music" / "bed.flac")], check=True)
    extra = ""
    if background == "video":
        clip(tmp / "backdrop.mp4")
        extra = '\n[background]\nvideo = "backdrop.mp4"\n'
    elif background:
        extra = f'\n[background]\ncolor = "{background}"\n'
    (tmp / "scene.toml").write_text(SCENE + extra)
    return tmp / "scene.toml"


def make(out_dir: Path) -> list[Path]:
    """scene-idle.png and scene-speaking.png over the portrait's own background, and
    scene-video.png, speaking, over a looping video."""
    ensure_rabbitmq()
    written = []
    for background, shots in ((None, {"idle": 0, "speaking": 2}), ("video", {"video": 2})):
        with tempfile.TemporaryDirectory(prefix="avatarcast-scene-stills-") as t:
            written += _stills(Path(t), background, shots, out_dir)
    return written


def _stills(tmp: Path, background: str | None, shots: dict[str, int],
            out_dir: Path) -> list[Path]:
    """The scene recorded from a real RTMP client, and a still for each of `shots`: 0 the
    frame just before the text, else that many seconds into it."""
    w, h = SIZES["720p"]
    props(tmp, background)
    rtmp = NginxRtmp(tmp / "rtmp")
    rtmp.start()
    queues = QueueNames.unique()
    try:
        _, st, recording = speak_and_record(
            tmp / "d", queues, rtmp, {"AVATARCAST_SCENE__FILE": str(tmp / "scene.toml"),
                                      "AVATARCAST_ALIVE__ENABLED": "on"},
            [TEXT], animator="lite", width=w, height=h, idle_s=2.0)
    finally:
        rtmp.stop()
        delete_queues(queues)
    entry = next(e for e in st["recent"] if e["id"] == "t0")
    at = {name: (2 * FPS - 10 if s == 0 else entry["stream_first"] + s * FPS)
          for name, s in shots.items()}
    written = []
    for n, frame in enumerate(iter_frames(recording, w, h, pix_fmt="bgr24", channels=3)):
        for name in [k for k, i in at.items() if i == n]:
            path = out_dir / f"scene-{name}.png"
            cv2.imwrite(str(path), cv2.resize(frame, (960, 540), interpolation=cv2.INTER_AREA))
            written.append(path)
    return written


def main() -> None:
    for path in make(ROOT / "docs" / "img"):
        print(path.relative_to(ROOT))
