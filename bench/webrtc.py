"""What the WebRTC view (WHEP) costs and how far behind the program it is, at 720p30 on air with
the view at its defaults (640 px, 15 fps) and one headless Chromium watching.

  delay  the on_air event (the daemon's wall time when a message's first frame went to the
         encoder) -> the first speech heard: in the browser over WebRTC (WebAudio RMS every
         20 ms) and by an RTMP client (FFmpeg through nginx-rtmp, 10 ms windows), per message
  CPU    the daemon's (and FFmpeg's) CPU over alternating windows: nobody watching, then one
         browser watching over WebRTC; the browser's own CPU is not counted

  python -m bench webrtc      (about 3 minutes)
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from harness.daemon import publish
from harness.events import EventTap
from harness.whep import CHROMIUM, CHROMIUM_ARGS, WhepViewer

from .air import SHORT, stats
from .probes import LOUD, AudioWatch
from .session import Session, cpu_percent

WINDOW_S = 20.0
ROUNDS = 3
MESSAGES = 5


def _watch(browser: Any, base: str) -> WhepViewer:
    viewer = WhepViewer(browser.new_page(), base)
    started = viewer.start()
    if started["status"] != 201:
        raise RuntimeError(f"POST /whep answered {started['status']}: {started.get('text')}")
    viewer.wait(lambda s: s["video"]["framesDecoded"] > 10, 30, "frames in the browser")
    return viewer


def _cpu(s: Session, browser: Any, base: str) -> dict[str, Any]:
    pids = s.pids()
    none: list[dict[str, float]] = []
    watched: list[dict[str, float]] = []
    cpu_percent(pids, 5.0)  # settle after start
    for _ in range(ROUNDS):
        none.append(cpu_percent(pids, WINDOW_S))
        viewer = _watch(browser, base)
        watched.append(cpu_percent(pids, WINDOW_S))
        viewer.stop()
        viewer.page.close()
    out: dict[str, Any] = {}
    for who in ("daemon", "ffmpeg"):
        a = statistics.median(r[who] for r in none)
        b = statistics.median(r[who] for r in watched)
        out[who] = {"unwatched_pct": round(a, 2), "watched_pct": round(b, 2),
                    "added_pct": round(b - a, 2), "windows_unwatched": [r[who] for r in none],
                    "windows_watched": [r[who] for r in watched]}
    return out


def _delay(s: Session, browser: Any, base: str, tap: EventTap) -> dict[str, Any]:
    audio = AudioWatch(s.url)
    viewer = _watch(browser, base)
    webrtc: list[float] = []
    rtmp: list[float] = []
    try:
        time.sleep(4)  # the RTMP client's start (stream probing)
        with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs on this thread
            for i in range(MESSAGES):
                msg_id = f"webrtc{i}-{time.monotonic_ns()}"
                pool.submit(publish, s.queues.speak,
                            {"type": "speak", "id": msg_id, "text": SHORT}).result()
                events = tap.wait_for(lambda ev, m=msg_id: any(
                    e["id"] == m and e["event"] == "finished" for e in ev), 30, msg_id)
                on_air = next(e["at"] for e in events
                              if e["id"] == msg_id and e["event"] == "on_air")
                heard = audio.first_loud_after(on_air, 10)
                time.sleep(1.0)  # the end of it on its way to the browser
                levels = viewer.levels(on_air)
                loud = levels[levels[:, 1] > LOUD, 0]
                if loud.size:
                    webrtc.append(float(loud[0]) - on_air)
                if heard is not None:
                    rtmp.append(heard - on_air)
                s.wait_idle()
                time.sleep(1.0)
        st = viewer.stats()
    finally:
        audio.close()
    viewer.stop()
    return {"webrtc": stats(webrtc), "rtmp": stats(rtmp),
            "webrtc_ms": [round(v * 1000) for v in webrtc],
            "rtmp_ms": [round(v * 1000) for v in rtmp],
            "codecs": [st["video"].get("codec"), st["audio"].get("codec")],
            "view_size": [st["width"], st["height"]]}


def run(work: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        raise SystemExit("chromium is not installed: scripts/install-deps.sh dev")
    with Session(work, "720p") as s, EventTap(s.queues.events) as tap, \
            sync_playwright() as pw:
        base = f"http://127.0.0.1:{s.proc.health_port}"
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        out: dict[str, Any] = {"window_s": WINDOW_S, "rounds": ROUNDS, "messages": MESSAGES}
        out["cpu"] = _cpu(s, browser, base)
        out["delay"] = _delay(s, browser, base, tap)
        browser.close()
        st = s.proc.status() or {}
    out["frames_dropped"], out["frames_late"] = st.get("frames_dropped"), st.get("frames_late")
    return out


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    d, c = f["delay"], f["cpu"]

    def delay(k: str) -> str:
        v = d[k]
        return (f"median {v.get('median')} ms, max {v.get('max')} ms, n={v['n']}"
                if v["n"] else "none heard")

    return [
        ("on_air -> first speech, WebRTC (browser)", delay("webrtc"), "", ""),
        ("on_air -> first speech, RTMP (FFmpeg client)", delay("rtmp"), "", ""),
        ("WebRTC view", f"{d['view_size'][0]}x{d['view_size'][1]}, "
         f"{' + '.join(str(x) for x in d['codecs'])}", "", ""),
        ("daemon CPU, nobody watching (median of windows)",
         f"{c['daemon']['unwatched_pct']} % of a core", "", ""),
        ("daemon CPU, one WebRTC viewer", f"{c['daemon']['watched_pct']} % of a core "
         f"(+{c['daemon']['added_pct']} points)", "", ""),
        ("FFmpeg CPU, unwatched / watched",
         f"{c['ffmpeg']['unwatched_pct']} / {c['ffmpeg']['watched_pct']} %", "", ""),
        ("frames dropped / late over the run", f"{f['frames_dropped']} / {f['frames_late']}",
         "0", "met" if f["frames_dropped"] == 0 else "MISSED"),
    ]


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(f["cpu"]["daemon"]["windows_unwatched"], "o-", label="nobody watching")
    a.plot(f["cpu"]["daemon"]["windows_watched"], "o-", label="one WebRTC viewer")
    a.set(xlabel="round", ylabel="daemon CPU, % of a core", title="cost")
    a.legend()
    d = f["delay"]
    b.boxplot([np.array(d["webrtc_ms"] or [0]), np.array(d["rtmp_ms"] or [0])])
    b.set_xticks([1, 2], ["WebRTC", "RTMP"])
    b.set(ylabel="on_air -> first speech heard, ms", title="delay")
    fig.suptitle(f"avatarcast WebRTC view, {record['stamp']}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def measure() -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="avatarcast-webrtc-") as tmp:
        return run(Path(tmp))
