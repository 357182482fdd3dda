"""README evidence from the received stream: the daemon speaks at 720p to nginx-rtmp, a real
client records it, and this picks the received frames in the middle of an "ooh", an "ee", an
"mm" and an "f" (from the daemon's record of what aired) and one at rest, crops the face, and
cuts a 10 s clip of the face speaking.

  python -m bench stills   writes docs/img/lite-*.png and docs/img/lite-clip.mp4 (the still
                           image's own mouth), docs/img/atlas-*.png and atlas-clip.mp4 (the
                           portrait with a mouth atlas from a talking reference made here)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import cv2

from avatarcast.avatar.face.mouthtrack import LEAD_S
from avatarcast.avatar.track import FaceTracker
from harness.daemon import QueueNames, delete_queues
from harness.services import NginxRtmp, ensure_rabbitmq
from harness.speak import iter_frames, speak_and_record
from harness.talking import atlas_avatar_env

from .report import ROOT
from .session import FPS, SIZES

TEXT = ("Who knew? Mom made me feel free. Good food, blue moons, and sweet peas from "
        "the farm, for everyone who came.")
SHOTS = {"ooh": ("U", "O"), "ee": ("I",), "mm": ("PP",), "f": ("FF",)}


def _pick(aired: list[dict[str, Any]]) -> dict[str, int]:
    """Stream frame at the middle of the longest phone of each shot, and one at rest."""
    phones = [p for e in aired for p in e["phones"]]
    out = {"rest": max(0, aired[0]["frame"] - 10)}
    for name, visemes in SHOTS.items():
        found = [p for p in phones if p[2] in visemes]
        if found:
            start, end, _ = max(found, key=lambda p: p[1] - p[0])
            out[name] = int(((start + end) / 2 - LEAD_S) * FPS)  # the lips lead the sound
    return out


def _frames(recording: Path, width: int, height: int, wanted: set[int]) -> dict[int, Any]:
    return {k: frame.copy() for k, frame in enumerate(
        iter_frames(recording, width, height, "rgb24", 3)) if k in wanted}


def make(out_dir: Path, name: str = "lite", atlas: bool = False) -> list[Path]:
    """With `atlas`, the portrait has a mouth atlas from a talking reference made here."""
    ensure_rabbitmq()
    width, height = SIZES["720p"]
    with tempfile.TemporaryDirectory(prefix="avatarcast-stills-") as tmp:
        work = Path(tmp)
        server, queues = NginxRtmp(work / "nginx"), QueueNames.unique()
        server.start()
        transcript = work / "aired.jsonl"
        extra = atlas_avatar_env(work, fps=FPS) if atlas else {}
        try:
            _, _, recording = speak_and_record(work, queues, server, {
                "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript), **extra,
            }, [TEXT], animator="lite", width=width, height=height, fps=FPS)
        finally:
            server.stop()
            delete_queues(queues)
        aired = [json.loads(x) for x in transcript.read_text().splitlines()]
        picks = _pick(aired)
        frames = _frames(recording, width, height, set(picks.values()))
        lm = FaceTracker().find(frames[picks["rest"]])
        assert lm is not None, "no face in the received rest frame"
        (x0, y0), (x1, y1) = lm[:, :2].min(0), lm[:, :2].max(0)
        cx, cy, r = int((x0 + x1) / 2), int(y0 + 0.62 * (y1 - y0)), int(0.42 * (y1 - y0))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for shot, k in picks.items():
            crop = frames[k][max(0, cy - r) : cy + r, max(0, cx - r) : cx + r]
            path = out_dir / f"{name}-{shot}.png"
            cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(crop, (320, 320)), cv2.COLOR_RGB2BGR))
            written.append(path)
        start = max(0.0, aired[0]["start_s"] - 1.0)
        fy, fx = max(0, int(y0 - 0.5 * (y1 - y0))) // 2 * 2, max(0, int(x0 - 0.5 * (x1 - x0)))
        side = int(2.0 * (y1 - y0)) // 2 * 2
        clip = out_dir / f"{name}-clip.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-ss", f"{start:.3f}", "-t", "10", "-i",
             str(recording), "-vf", f"crop={side}:{side}:{fx // 2 * 2}:{fy},scale=360:360",
             "-c:v", "libx264", "-crf", "26", "-preset", "veryslow", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(clip)], check=True)
        written.append(clip)
    return written


def main() -> None:
    for path in make(ROOT / "docs" / "img") + make(ROOT / "docs" / "img", "atlas", atlas=True):
        print(path.relative_to(ROOT))
