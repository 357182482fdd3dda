"""Stills of a full scene from the received stream (issue 30): the daemon at 720p with a scene
file (a logo, the lower third, a ticker, a clock, the AI label, a music bed), a real RTMP
client records it, and a frame at rest and one mid-sentence are kept as PNGs.

  python -m bench scene-stills   writes docs/img/scene-idle.png and docs/img/scene-speaking.png
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
    background colour (#rrggbb) behind the person too."""
    logo = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    d = ImageDraw.Draw(logo)
    d.ellipse((8, 8, 248, 248), fill=(214, 54, 38, 255))
    d.ellipse((70, 70, 186, 186), fill=(255, 255, 255, 255))
    logo.save(tmp / "logo.png")
    (tmp / "music").mkdir()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=220:sample_rate=48000:duration=30", "-af",
                    "tremolo=f=2:d=0.6", str(tmp / "music" / "bed.flac")], check=True)
    extra = f'\n[background]\ncolor = "{background}"\n' if background else ""
    (tmp / "scene.toml").write_text(SCENE + extra)
    return tmp / "scene.toml"


def make(out_dir: Path) -> list[Path]:
    ensure_rabbitmq()
    w, h = SIZES["720p"]
    with tempfile.TemporaryDirectory(prefix="avatarcast-scene-stills-") as t:
        tmp = Path(t)
        props(tmp)
        rtmp = NginxRtmp(tmp / "rtmp")
        rtmp.start()
        queues = QueueNames.unique()
        try:
            _, st, recording = speak_and_record(
                tmp / "d", queues, rtmp, {"AVATARCAST_SCENE__FILE": str(tmp / "scene.toml")},
                [TEXT], animator="lite", width=w, height=h, idle_s=2.0)
        finally:
            rtmp.stop()
            delete_queues(queues)
        entry = next(e for e in st["recent"] if e["id"] == "t0")
        shots = {"idle": 2 * FPS - 10, "speaking": entry["stream_first"] + 2 * FPS}
        written = []
        for n, frame in enumerate(iter_frames(recording, w, h, pix_fmt="bgr24", channels=3)):
            for name in [k for k, at in shots.items() if at == n]:
                path = out_dir / f"scene-{name}.png"
                cv2.imwrite(str(path), cv2.resize(frame, (960, 540),
                                                  interpolation=cv2.INTER_AREA))
                written.append(path)
    return written


def main() -> None:
    for path in make(ROOT / "docs" / "img"):
        print(path.relative_to(ROOT))
