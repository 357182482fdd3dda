"""What the face's motion (alive.enabled) costs inside the daemon: one 720p30 daemon (lite
animator, veryfast, the bundled portrait) with the motion off, then on: the CPU of the
daemon's Python and of its FFmpeg at idle (20 s) and while two long texts air, the ticks late
and the frames held (the animator behind air) while they do, and the drawing's own median
time as `/healthz` tells it (`motion_ms_per_frame`).

  python -m bench motion
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from .session import Session, cpu_percent, cpu_seconds

TEXT = ("The weather today is calm across most of the country, with light winds and a few "
        "showers in the north. Temperatures will climb slowly through the afternoon, and by "
        "the evening most places will be dry and mild. Tomorrow brings a change, as a band of "
        "rain moves in from the west and spreads across every region by noon.")
IDLE_S = 20
COUNTS = ("frames_late", "frames_held", "frames_dropped")


def one(work: Path, enabled: str) -> dict[str, Any]:
    with Session(work, "720p", {"AVATARCAST_ALIVE__ENABLED": enabled}) as s:
        pids = s.pids()
        time.sleep(5)
        idle = cpu_percent(pids, IDLE_S)
        before = s.proc.status() or {}
        # The CPU over the texts: from publishing until both have aired.
        start = {k: cpu_seconds(p) for k, p in pids.items()}
        t0 = time.monotonic()
        s.say("a", TEXT)
        s.say("b", TEXT)
        time.sleep(3)
        after = s.wait_idle(240)
        wall = time.monotonic() - t0
        speech = {k: round(100 * (cpu_seconds(p) - start[k]) / wall, 1) for k, p in pids.items()}
        return {"motion": after.get("motion"),
                "motion_ms_per_frame": after.get("motion_ms_per_frame"),
                "idle_cpu_pct": idle, "speech_cpu_pct": speech,
                **{k: int(after[k]) - int(before.get(k, 0)) for k in COUNTS}}


def measure() -> dict[str, Any]:
    out = {}
    for enabled in ("off", "auto"):
        with tempfile.TemporaryDirectory(prefix="avatarcast-motion-") as tmp:
            out[enabled] = one(Path(tmp), enabled)
    return out


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    out = []
    for enabled, v in f.items():
        label = f"alive.enabled {enabled} (motion {v['motion']})"
        out += [
            (f"{label}: CPU at idle", f"daemon {v['idle_cpu_pct']['daemon']} %, FFmpeg "
             f"{v['idle_cpu_pct']['ffmpeg']} % of a core", "", ""),
            (f"{label}: CPU in speech", f"daemon {v['speech_cpu_pct']['daemon']} %, FFmpeg "
             f"{v['speech_cpu_pct']['ffmpeg']} % of a core", "", ""),
            (f"{label}: late / held / dropped in speech",
             f"{v['frames_late']} / {v['frames_held']} / {v['frames_dropped']}",
             "0 held, 0 dropped", "met" if not (v["frames_held"] or v["frames_dropped"])
             else "MISSED"),
            (f"{label}: drawing the motion", f"{v['motion_ms_per_frame']} ms a frame (median)",
             "a few ms", ""),
        ]
    return out


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    names = list(f)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (phase, key) in enumerate((("idle", "idle_cpu_pct"), ("speech", "speech_cpu_pct"))):
        for j, proc in enumerate(("daemon", "ffmpeg")):
            xs = [k + 0.2 * (2 * i + j) for k in range(len(names))]
            ax.bar(xs, [f[n][key][proc] for n in names], width=0.18, label=f"{proc}, {phase}")
    ax.set_xticks([k + 0.3 for k in range(len(names))], [f"alive {n}" for n in names])
    ax.set(ylabel="% of a core", title=f"avatarcast motion cost at 720p30, {record['stamp']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
