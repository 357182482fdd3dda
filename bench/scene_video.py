"""What a looping video behind the person costs (issue 30), at one output size: on the pacer
thread, the scene putting the video's frame behind the person by the person's mask (the
compositor with no other layer, the frame taken from the decoder's queue); the motion moving
the mask with the frame (the alive stage's draw with and without it); and FFmpeg decoding
the video a few frames ahead, as a share of a core. The ticks are paced at 30 fps, as on air,
so the decoder is measured at the rate it runs at."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatarcast.avatar.alive.driver import Motion
from avatarcast.avatar.alive.rig import FaceRig
from avatarcast.avatar.alive.stage import draw
from avatarcast.avatar.segment import Segmenter
from avatarcast.avatar.track import FaceTracker
from avatarcast.infra.scratch import Scratch
from avatarcast.media.frames import mask_frame
from avatarcast.media.idle import Behind, IdleCycle
from avatarcast.media.loop import LoopingVideo
from avatarcast.onair.tick import TickOutput
from avatarcast.playout.scene.compose import Compositor
from avatarcast.playout.scene.spec import AiLabel, Scene

TICKS = 300
FPS = 30


def clip(path: Path) -> Path:
    """A 10 s moving studio backdrop, H.264 at 1080p (a user's video is no smaller)."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"gradients=s=1920x1080:c0=0x1d3557:c1=0x457b9d:c2=0xa8dadc:speed=0.02:"
                    f"rate={FPS}:duration=10", "-c:v", "libx264", "-preset", "veryfast",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def _stats(spent: list[float]) -> dict[str, float]:
    s = sorted(spent)
    return {"median_ms": round(statistics.median(s) * 1000, 3),
            "p95_ms": round(s[int(0.95 * (len(s) - 1))] * 1000, 3)}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 10 ms


def measure(portrait: np.ndarray, width: int, height: int, video: Path) -> dict[str, Any]:
    rgb = cv2.resize(portrait, (width, height), interpolation=cv2.INTER_AREA)
    frame = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), np.uint8)
    mask = mask_frame(Segmenter()(rgb))  # (0-1: the float mask)
    player = LoopingVideo(video, width, height, FPS)
    player.start()
    try:
        idle = IdleCycle([frame], behind=Behind([mask], player))
        scene = Compositor(Scene(ai_label=AiLabel(enabled=False)), Path("."), width, height,
                           FPS)
        proc = player._proc
        cpu0, t0 = (_cpu_s(proc.pid) if proc else 0.0), time.monotonic()
        spent: list[float] = []
        for n in range(TICKS):
            time.sleep(max(0.0, t0 + n / FPS - time.monotonic()))
            out = TickOutput(frame, np.zeros(1600, np.int16), shown=idle)
            t = time.perf_counter()
            scene(n, out)
            spent.append(time.perf_counter() - t)
        wall = time.monotonic() - t0
        decoder = round(100 * (_cpu_s(proc.pid) - cpu0) / wall, 1) if proc else None
        late = player.late
    finally:
        player.close()
    lm = FaceTracker().find(rgb)
    assert lm is not None, "no face in the portrait"
    rig = FaceRig(lm[None], width, height)
    scratch, moved = Scratch(), np.empty_like(mask)
    plain, with_mask = [], []
    for n in range(TICKS):
        m = Motion(head_x=0.01 * np.sin(n / 9), head_y=0.005, roll=0.5, rise=0.01)
        t = time.perf_counter()
        draw(frame, rig, 0, m, scratch)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        draw(frame, rig, 0, m, scratch, (mask, moved))
        with_mask.append(time.perf_counter() - t)
    return {"behind": _stats(spent), "late": late, "decoder_cpu_pct": decoder,
            "motion": _stats(plain), "motion_with_mask": _stats(with_mask)}
