"""What staying on air costs: CPU of the daemon and its FFmpeg while idle, against FFmpeg alone
encoding the same idle picture from a file with the same encoder settings (the floor), and
resident memory over time."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from avatarcast.onair.ffmpeg_args import build_args, targets
from avatarcast.settings import Settings
from harness.daemon import rss_mib

from .session import BITRATE_KBPS, FPS, PRESET, Session, cpu_percent


def baseline_args(s: Session, video_file: Path, audio_file: Path) -> list[str]:
    """The daemon's own encoder command line (ffmpeg_args.build_args, same settings), with
    its two pipes replaced by files read in a loop at their native rate."""
    settings = Settings(
        video={"width": s.width, "height": s.height, "fps": FPS, "preset": PRESET,  # type: ignore[arg-type]
               "bitrate_kbps": BITRATE_KBPS[s.size]},
        output={"rtmp_urls": [s.server.url(s.key + "-baseline")]},  # type: ignore[arg-type]
    )
    fifo = "@AUDIO@"
    (target,) = targets(settings.output)
    args = build_args(settings.video, settings.audio, settings.output, fifo, target)
    out = []
    for i, a in enumerate(args):
        if a == "-i" and args[i + 1] in ("pipe:0", fifo):
            out += ["-re", "-stream_loop", "-1"]
        out.append(str(video_file) if a == "pipe:0" else str(audio_file) if a == fifo else a)
    return out


def idle_cpu(s: Session, seconds: float) -> dict[str, Any]:
    """Run inside an open session: the daemon idle, then the baseline alone."""
    time.sleep(3)  # past the start-up
    ours = cpu_percent(s.pids(), seconds)
    video = s.work / "idle.yuv"
    with video.open("wb") as f:
        for frame in s.idle_frames():
            f.write(frame.tobytes())
    audio = s.work / "silence.s16le"
    audio.write_bytes(bytes(2 * Settings().audio.sample_rate))  # 1 s, mono s16le
    # The daemon goes quiet for the baseline: SIGSTOP would break its stream, so it is stopped.
    s.proc.stop()
    base = subprocess.Popen(baseline_args(s, video, audio), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(3)
        if base.poll() is not None:
            raise RuntimeError(f"baseline FFmpeg failed: {base.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
        floor = cpu_percent({"ffmpeg": base.pid}, seconds)["ffmpeg"]
    finally:
        base.terminate()
        base.wait(10)
    total = ours["daemon"] + ours["ffmpeg"]
    return {
        "daemon_pct": ours["daemon"], "daemon_ffmpeg_pct": ours["ffmpeg"],
        "baseline_ffmpeg_pct": floor,
        "ratio": round(total / floor, 3) if floor > 0 else None,
    }


class MemorySampler:
    """Resident memory of the daemon and its FFmpeg every `every` seconds, on a thread."""

    def __init__(self, pids: dict[str, int], every: float) -> None:
        self.pids = pids
        self.every = every
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._t0 = time.time()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                row = {k: round(rss_mib(p), 1) for k, p in self.pids.items()}
            except (OSError, IndexError):
                break
            row["t_s"] = round(time.time() - self._t0, 1)
            self.samples.append(row)
            self._stop.wait(self.every)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(5)
        return summarize_memory(self.samples)


def summarize_memory(samples: list[dict[str, float]]) -> dict[str, Any]:
    if len(samples) < 4:
        return {"samples": samples}
    t = np.array([r["t_s"] for r in samples])
    total = np.array([r["daemon"] + r["ffmpeg"] for r in samples])
    half = t >= t[-1] / 2  # the second half: after warm-up and the first messages
    slope = float(np.polyfit(t[half] / 3600, total[half], 1)[0]) if half.sum() >= 3 else None
    return {
        "start_mb": float(total[0]), "end_mb": float(total[-1]), "max_mb": float(total.max()),
        "second_half_slope_mb_per_h": round(slope, 2) if slope is not None else None,
        "samples": samples,
    }
