"""How many 720p30 channels one machine carries: a worker with 1, 2, 3 … channels (lite
animator, x264 veryfast at 2500 kb/s, each to its own stream on nginx-rtmp, each saying a text
every 20 s), until a frame is dropped (by the daemon, or missing at a client). Per step:
frames dropped and late ticks (the daemon's counts; a late tick still sends its frame),
frames received by a client per stream, and where the CPU goes (the worker's Python, its
FFmpeg encoders).

  python -m bench capacity [--minutes 10] [--max-channels 4]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.daemon import QueueNames, delete_queues, publish, write_channels
from harness.services import NginxRtmp, ensure_rabbitmq

from .air import SHORT
from .cadence import summary
from .probes import PacketLog
from .session import FPS, channels_worker, cpu_seconds, ffmpeg_children


def _step(work: Path, k: int, minutes: float) -> dict[str, Any]:
    rtmp = NginxRtmp(work / f"rtmp{k}")
    rtmp.start()
    ids = [f"c{i}" for i in range(k)]
    urls = {cid: rtmp.url(f"cap-{cid}") for cid in ids}
    queues = QueueNames.unique()
    worker = channels_worker(work, f"w{k}", queues,
                             write_channels(work / f"channels{k}.toml", urls))
    clients: dict[str, PacketLog] = {}
    try:
        worker.wait_for(lambda s: all(s["channels"].get(c, {}).get("speech_ready")
                                      for c in ids), 300, f"{k} channels on air")
        clients = {cid: PacketLog(url) for cid, url in urls.items()}
        time.sleep(5)
        before = worker.status() or {}
        pids = {"worker": worker.proc.pid}
        pids.update({f"ffmpeg{i}": p for i, p in enumerate(ffmpeg_children(worker.proc.pid))})
        cpu0 = {k_: cpu_seconds(p) for k_, p in pids.items()}
        t0, wall0 = time.monotonic(), time.time()
        said, next_say = 0, time.monotonic()
        while time.monotonic() - t0 < minutes * 60:
            if time.monotonic() >= next_say:
                for cid in ids:
                    publish(queues.channel(cid).speak, {"type": "speak", "id": f"{cid}-{said}",
                                                     "text": SHORT})
                said += 1
                next_say += 20
            time.sleep(0.5)
        wall = time.monotonic() - t0
        cpu = {k_: round(100 * (cpu_seconds(p) - cpu0[k_]) / wall, 1) for k_, p in pids.items()}
        after = worker.status() or {}
        wall1 = time.time()
    finally:
        for c in clients.values():
            c.close()
        worker.stop()
        rtmp.stop()
        for cid in ids:
            delete_queues(queues.channel(cid))

    def count(st: dict[str, Any], key: str) -> int:
        return sum(int(st["channels"][c].get(key) or 0) for c in ids)

    received = {cid: summary(c.packets, FPS, wall0, wall1) for cid, c in clients.items()}
    ffmpeg = sum(v for k_, v in cpu.items() if k_.startswith("ffmpeg"))
    return {
        "channels": k, "seconds": round(wall, 1), "messages_per_channel": said,
        "frames_dropped": count(after, "frames_dropped") - count(before, "frames_dropped"),
        "frames_late": count(after, "frames_late") - count(before, "frames_late"),
        "client_frames_dropped": sum(int(r.get("frames_dropped", 0)) for r in received.values()),
        "client_frames_received": sum(int(r.get("frames_received", 0))
                                      for r in received.values()),
        "cpu_worker_pct": cpu["worker"], "cpu_ffmpeg_pct": round(ffmpeg, 1),
        "cpu_per_channel_pct": round((cpu["worker"] + ffmpeg) / k, 1),
    }


def measure(work: Path, minutes: float, most: int) -> dict[str, Any]:
    ensure_rabbitmq()
    steps = []
    for k in range(1, most + 1):
        step = _step(work, k, minutes)
        steps.append(step)
        print(f"{k} channel(s): {step}", flush=True)
        if step["frames_dropped"] or step["client_frames_dropped"]:
            break
    carried = max((s["channels"] for s in steps if not (
        s["frames_dropped"] or s["client_frames_dropped"])), default=0)
    return {"minutes": minutes, "steps": steps, "channels_carried": carried}


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [(
        "720p30 channels with 0 dropped frames", str(f["channels_carried"]),
        "as many as it can", "")]
    for s in f["steps"]:
        out.append((f"{s['channels']} channel(s), {s['seconds']:.0f} s",
                    f"dropped {s['frames_dropped']}, late {s['frames_late']}, client dropped "
                    f"{s['client_frames_dropped']} of {s['client_frames_received']}; CPU worker "
                    f"{s['cpu_worker_pct']}% + FFmpeg {s['cpu_ffmpeg_pct']}% "
                    f"({s['cpu_per_channel_pct']}% a channel)", "", ""))
    return out


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = record["figures"]["steps"]
    ks = [s["channels"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([k - 0.2 for k in ks], [s["cpu_worker_pct"] for s in steps], 0.4,
           label="worker (Python)")
    ax.bar([k + 0.2 for k in ks], [s["cpu_ffmpeg_pct"] for s in steps], 0.4,
           label="FFmpeg encoders")
    ax.axhline(200, color="grey", lw=0.8)
    ax.set(xlabel="720p30 channels", ylabel="CPU, % of one core (2 cores = 200)",
           xticks=ks, title=f"avatarcast capacity, {record['stamp']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_all(minutes: float, most: int) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="avatarcast-capacity-") as tmp:
        return measure(Path(tmp), minutes, most)
