"""Benchmark: what staying on air costs, and how fast `say` reaches the received stream.

Runs the daemon against a local nginx-rtmp (started here) and prints:
  * CPU of the daemon and of its FFmpeg while idle (percent of one core), median of 1 s samples;
  * `say` -> first speech sample arriving at a real RTMP client (wall clock), median and p95.

Usage: .venv/bin/python -m bench.broadcast [--width 1280 --height 720 --idle-s 20 --says 5]
It reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import DaemonProc, QueueNames, delete_queues, publish
from tests.services import NginxRtmp, ensure_rabbitmq

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def ffmpeg_child(pid: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(pid), "ffmpeg"], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def sample_cpu(pids: dict[str, int], seconds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {k: [] for k in pids}
    last = {k: cpu_seconds(p) for k, p in pids.items()}
    t = time.monotonic()
    for _ in range(seconds):
        time.sleep(1.0)
        now = time.monotonic()
        for k, p in pids.items():
            c = cpu_seconds(p)
            samples[k].append(100 * (c - last[k]) / (now - t))
            last[k] = c
        t = now
    return {k: statistics.median(v) for k, v in samples.items()}


class AudioListener:
    """An RTMP client decoding audio as it arrives; notes when speech energy first appears."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-fflags", "nobuffer",
             "-rw_timeout", "5000000", "-i", url, "-map", "0:a", "-ac", "1", "-ar", "16000",
             "-f", "s16le", "pipe:1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.loud_at: float | None = None
        self.armed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read(320):  # 10 ms
            x = np.frombuffer(chunk, dtype=np.int16).astype(np.float32) / 32768
            if self.armed.is_set() and self.loud_at is None and np.sqrt((x**2).mean()) > 0.02:
                self.loud_at = time.time()

    def arm(self) -> None:
        self.loud_at = None
        self.armed.set()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--idle-s", type=int, default=20)
    ap.add_argument("--says", type=int, default=5)
    args = ap.parse_args()
    ensure_rabbitmq()
    work = Path(tempfile.mkdtemp(prefix="avatarcast-bench-"))
    server = NginxRtmp(work / "nginx")
    server.start()
    queues = QueueNames.unique()
    url = server.url(f"bench{uuid.uuid4().hex[:6]}")
    daemon = DaemonProc(work, queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url]),
        "AVATARCAST_VIDEO__WIDTH": str(args.width),
        "AVATARCAST_VIDEO__HEIGHT": str(args.height),
        "AVATARCAST_VIDEO__BITRATE_KBPS": "2500",
        "AVATARCAST_VIDEO__PRESET": "veryfast",
    })
    listener: AudioListener | None = None
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        time.sleep(2)
        pids = {"daemon": daemon.proc.pid, "ffmpeg": ffmpeg_child(daemon.proc.pid)}
        cpu = sample_cpu(pids, args.idle_s)
        listener = AudioListener(url)
        time.sleep(3)
        latencies = []
        for i in range(args.says):
            listener.arm()
            t0 = time.time()
            publish(queues.speak, {"type": "speak", "id": f"b{i}", "text": "Hello, I am live."})
            while listener.loud_at is None and time.time() - t0 < 10:
                time.sleep(0.005)
            if listener.loud_at is not None:
                latencies.append(listener.loud_at - t0)
            daemon.wait_for(lambda s, i=i: s["state"] == "idle" and s["queued"] == 0, 20, "idle")
            time.sleep(1)
        st = daemon.status() or {}
    finally:
        if listener is not None:
            listener.close()
        daemon.stop()
        server.stop()
        delete_queues(queues)
    print(f"resolution            {args.width}x{args.height} 30 fps, veryfast, 2500 kbit/s")
    print(f"idle CPU daemon       {cpu['daemon']:.1f} % of one core (median of {args.idle_s} s)")
    print(f"idle CPU ffmpeg       {cpu['ffmpeg']:.1f} % of one core")
    if latencies:
        lat = sorted(latencies)
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        print(f"say -> first speech   median {statistics.median(lat) * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms (n={len(lat)}, at a real RTMP client)")
    print(f"frames sent/dropped   {st.get('frames_sent')} / {st.get('frames_dropped')}, "
          f"late {st.get('frames_late')}")


if __name__ == "__main__":
    main()
