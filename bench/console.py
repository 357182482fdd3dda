"""What the web console costs: the daemon's CPU (and FFmpeg's, for scale) at 720p30, idle on
air, over alternating windows with nobody watching and with one headless Chromium showing the
console (its MJPEG preview and its status polling). The browser's own CPU is not the daemon's
and is not counted.

  python -m bench console      (about 3 minutes)
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from .session import Session, cpu_percent

WINDOW_S = 20.0
ROUNDS = 3


def run(work: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed: scripts/install-deps.sh dev")
    none: list[dict[str, float]] = []
    watched: list[dict[str, float]] = []
    with Session(work, "720p") as s, sync_playwright() as pw:
        pids = s.pids()
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        url = f"http://127.0.0.1:{s.proc.health_port}/"
        cpu_percent(pids, 5.0)  # settle after start
        for _ in range(ROUNDS):
            none.append(cpu_percent(pids, WINDOW_S))
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("document.getElementById('preview').naturalWidth > 0")
            watched.append(cpu_percent(pids, WINDOW_S))
            page.close()
        browser.close()
        st = s.proc.status() or {}
    out: dict[str, Any] = {"window_s": WINDOW_S, "rounds": ROUNDS,
                           "frames_dropped": st.get("frames_dropped"),
                           "frames_late": st.get("frames_late")}
    for who in ("daemon", "ffmpeg"):
        a = statistics.median(r[who] for r in none)
        b = statistics.median(r[who] for r in watched)
        out[who] = {"unwatched_pct": round(a, 2), "watched_pct": round(b, 2),
                    "added_pct": round(b - a, 2), "windows_unwatched": [r[who] for r in none],
                    "windows_watched": [r[who] for r in watched]}
    return out


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    d, e = f["daemon"], f["ffmpeg"]
    return [
        ("daemon CPU, nobody watching (median of windows)", f"{d['unwatched_pct']} % of a core",
         "", ""),
        ("daemon CPU, one browser on the console", f"{d['watched_pct']} % of a core "
         f"(+{d['added_pct']} points)", "", ""),
        ("FFmpeg CPU, unwatched / watched", f"{e['unwatched_pct']} / {e['watched_pct']} %",
         "", ""),
        ("frames dropped / late over the run", f"{f['frames_dropped']} / {f['frames_late']}",
         "0", "met" if f["frames_dropped"] == 0 else "MISSED"),
    ]


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = record["figures"]["daemon"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(d["windows_unwatched"], "o-", label="nobody watching")
    ax.plot(d["windows_watched"], "o-", label="one browser on the console")
    ax.set(xlabel="round", ylabel="daemon CPU, % of a core",
           title=f"avatarcast console cost, {record['stamp']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="avatarcast-console-") as tmp:
        return run(Path(tmp))
