"""Resident memory against the length of a text: the daemon idle, speaking a short text, and
speaking the longest accepted text (5 000 characters, minutes of speech), at 480p, 720p and
1080p. The target: the longest text stays within idle + 300 MiB (issue 13)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from harness.daemon import LONGEST_TEXT, rss_mib

from .session import SIZES, Session

TARGET_MIB = 300


def _sample(pid: int, seconds: float, every: float = 0.25) -> list[float]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(rss_mib(pid))
        time.sleep(every)
    return out


def one_size(work: Path, size: str, speak_s: float) -> dict[str, Any]:
    with Session(work / size, size) as s:
        pid = s.proc.proc.pid
        time.sleep(3)
        idle = statistics.median(_sample(pid, 3))
        s.say("short", "A short text first.")
        s.entry("short", timeout=60)
        after_short = statistics.median(_sample(pid, 2))
        s.say("longest", LONGEST_TEXT)
        s.proc.wait_for(lambda st: st["on_air"] == "longest", 90, "longest on air")
        talking = _sample(pid, speak_s)
        s.control("skip")
        s.entry("longest", timeout=30)
    return {
        "idle_mib": round(idle), "after_short_mib": round(after_short),
        "longest_peak_mib": round(max(talking)),
        "longest_median_mib": round(statistics.median(talking)),
        "extra_peak_mib": round(max(talking) - idle),
        "speak_s": speak_s, "series_mib": [round(v) for v in talking],
    }


def run(work: Path, speak_s: float) -> dict[str, Any]:
    return {size: one_size(work, size, speak_s) for size in SIZES}


def rows(figures: dict[str, Any]) -> list[tuple[str, ...]]:
    out = []
    for size, f in figures.items():
        out.append((f"longest text at {size}: resident memory",
                    f"idle {f['idle_mib']}, peak {f['longest_peak_mib']} "
                    f"(+{f['extra_peak_mib']}), median {f['longest_median_mib']} MiB",
                    f"<= idle + {TARGET_MIB} MiB",
                    "met" if f["extra_peak_mib"] <= TARGET_MIB else "MISSED"))
    return out


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for size, f in record["figures"].items():
        xs = [i * 0.25 for i in range(len(f["series_mib"]))]
        line = ax.plot(xs, f["series_mib"], label=f"{size} speaking the longest text")[0]
        ax.axhline(f["idle_mib"], color=line.get_color(), ls=":", lw=1)
        ax.axhline(f["idle_mib"] + TARGET_MIB, color=line.get_color(), ls="--", lw=1)
    ax.set(title=f"Resident memory (dotted: idle; dashed: idle + {TARGET_MIB} MiB), "
           f"{record['stamp']}", xlabel="seconds on air", ylabel="MiB")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
