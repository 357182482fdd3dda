"""One daemon on air to a local nginx-rtmp, as a user would run it, plus the process figures
(CPU, resident memory) the benchmarks read from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from avatarcast.avatar import mesh
from avatarcast.avatar.prepare import load
from avatarcast.avatar.runtime import Avatar, for_output
from harness.daemon import DaemonProc, QueueNames, delete_queues, publish
from harness.services import NginxRtmp, ensure_rabbitmq

FPS = 30
TICK = os.sysconf("SC_CLK_TCK")
SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
PRESET, BITRATE_KBPS = "veryfast", {"480p": 1200, "720p": 2500, "1080p": 4500}


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """CPU time of `pid`; with `reaped`, and of its children that ended and were waited for
    (a worker's: the music bed's FFmpeg decoders, one a track)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = int(fields[11]) + int(fields[12])  # utime + stime
    return (own + (int(fields[13]) + int(fields[14]) if reaped else 0)) / TICK


def cpu_percent(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Mean CPU of each process over the window, in percent of one core."""
    before = {k: cpu_seconds(p) for k, p in pids.items()}
    t = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t
    return {k: round(100 * (cpu_seconds(p) - before[k]) / wall, 2) for k, p in pids.items()}


def ffmpeg_children(pid: int) -> list[int]:
    """The daemon's FFmpeg encoders (not the music bed's decoders, which come and go)."""
    out = subprocess.run(["pgrep", "-P", str(pid), "-f", "ffmpeg .*-f rawvideo"],
                         capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def ffmpeg_child(pid: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while True:
        if children := ffmpeg_children(pid):
            return children[0]
        if time.monotonic() > deadline:
            raise RuntimeError("the daemon has no FFmpeg child")
        time.sleep(0.2)


def channels_worker(work: Path, name: str, queues: QueueNames, channels_file: Path,
                    **env: str) -> DaemonProc:
    """A worker running a channels file at 720p30 (veryfast, lite animator, the avatar
    prepared once in work/avatars), as the fleet and capacity benches run it."""
    w, h = SIZES["720p"]
    return DaemonProc(work / name, queues, {
        "AVATARCAST_CHANNELS_FILE": str(channels_file),
        "AVATARCAST_OUTPUT__RTMP_URLS": "[]",
        "AVATARCAST_FACE__ANIMATOR": "lite",
        "AVATARCAST_AVATAR__AVATARS_DIR": str(work / "avatars"),
        "AVATARCAST_VIDEO__WIDTH": str(w), "AVATARCAST_VIDEO__HEIGHT": str(h),
        "AVATARCAST_VIDEO__PRESET": PRESET,
        "AVATARCAST_VIDEO__BITRATE_KBPS": str(BITRATE_KBPS["720p"]),
        **env,
    })


class Session:
    """nginx-rtmp and the daemon at one output size, with the lite animator on the bundled
    portrait (prepared on first start), piper speech."""

    def __init__(self, work: Path, size: str, extra_env: dict[str, str] | None = None) -> None:
        self.work = work
        self.size = size
        self.width, self.height = SIZES[size]
        self.server = NginxRtmp(work / "nginx")
        self.queues = QueueNames.unique()
        self.key = f"bench{uuid.uuid4().hex[:6]}"
        self.extra_env = extra_env or {}
        self.daemon: DaemonProc | None = None

    @property
    def url(self) -> str:
        return self.server.url(self.key)

    @property
    def env(self) -> dict[str, str]:
        return {
            "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([self.url]),
            "AVATARCAST_VIDEO__WIDTH": str(self.width),
            "AVATARCAST_VIDEO__HEIGHT": str(self.height),
            "AVATARCAST_VIDEO__FPS": str(FPS),
            "AVATARCAST_VIDEO__BITRATE_KBPS": str(BITRATE_KBPS[self.size]),
            "AVATARCAST_VIDEO__PRESET": PRESET,
            "AVATARCAST_FACE__ANIMATOR": "lite",
            **self.extra_env,
        }

    def __enter__(self) -> Session:
        ensure_rabbitmq()
        self.server.start()
        self.daemon = DaemonProc(self.work, self.queues, self.env)
        self.daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 120,
                             "daemon ready")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self.server.stop()
        delete_queues(self.queues)

    @property
    def proc(self) -> DaemonProc:
        assert self.daemon is not None
        return self.daemon

    def pids(self) -> dict[str, int]:
        return {"daemon": self.proc.proc.pid, "ffmpeg": ffmpeg_child(self.proc.proc.pid)}

    def say(self, msg_id: str, text: str, **extra: object) -> float:
        t = time.time()
        publish(self.queues.speak, {"type": "speak", "id": msg_id, "text": text, **extra})
        return t

    def control(self, command: str) -> float:
        t = time.time()
        publish(self.queues.control, {"type": "control", "command": command})
        return t

    def wait_idle(self, timeout: float = 60) -> dict[str, Any]:
        return self.proc.wait_for(lambda s: s["state"] == "idle" and s["queued"] == 0,
                                  timeout, "idle")

    def entry(self, msg_id: str, timeout: float = 30) -> dict[str, Any]:
        st = self.proc.wait_for(lambda s: any(e["id"] == msg_id for e in s["recent"]),
                                timeout, f"{msg_id} settled")
        return next(e for e in st["recent"] if e["id"] == msg_id)

    def _avatar(self) -> Avatar:
        """The avatar the daemon airs: its prepared cache, fitted to the output size."""
        (directory,) = (self.work / "models" / "avatars").glob("auto-*")
        return for_output(load(directory), self.width, self.height, keep_rgb=False)

    def mouth_box(self) -> tuple[int, int, int, int]:
        """The lips' bounds over the whole idle cycle in output pixels, with a margin."""
        faces = self._avatar().faces
        assert faces is not None
        lips = faces.landmarks[:, list(mesh.OUTER_UPPER) + list(mesh.OUTER_LOWER), :2]
        (x0, y0), (x1, y1) = lips.reshape(-1, 2).min(0), lips.reshape(-1, 2).max(0)
        m = 0.35 * float(x1 - x0)
        return (int(max(0, x0 - m)), int(max(0, y0 - m)), int(min(self.width, x1 + m)),
                int(min(self.height, y1 + 2 * m)))

    def idle_frames(self) -> list[np.ndarray]:
        return self._avatar().idle.frames
