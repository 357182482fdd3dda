"""Alive on air (issue 27), read off the received stream as an outside checker would: a daemon
on its default settings (the bundled portrait, its default animator, framing and motion; only
the output, the queues, an offline voice and a transcript are set) streams to nginx-rtmp, a
real client records what the server relays, and the alive meter (harness/alive_meter.py) runs
on every received frame with two landmarkers (MediaPipe with its iris model; dlib where
requirements-bench.txt is installed).

The programme: M minutes of idle, then three texts one after the other with a few seconds
of idle between them (a long sentence, a question, one with emphasis), then an `ask` to a
local chat server that waits ASK_DELAY_S before its answer, so a "thinking" face shows.

Reported per window (idle, speech, thinking, the ask's answer): blinks a minute, their
duration, closing and opening, intervals (median, CV, skew), double blinks; the head's
amplitude (px, deg) and largest frame-to-frame step; its drift from the first minute to the
last; breathing rate and amplitude; brows; gaze; faces not found; the daemon's dropped frames;
and the lip-sync figures of bench/lipsync.py, computed from the same pass. The README's stills
and clip of the face alive come from the same recording (bench/alive_stills.py).

  python -m bench alive [--minutes 3] [--size 720]     (on air about M + 1 minutes, then
                                                        measured at about 20 frames a second
                                                        on 2 cores: 7 minutes in all for M = 2)
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from harness.alive_figures import summarize
from harness.alive_meter import measure_file, merge
from harness.chat_server import KEY, ChatServer
from harness.daemon import DaemonProc, QueueNames, Receiver, delete_queues, packets, publish
from harness.services import NginxRtmp, ensure_rabbitmq
from harness.speak import decode_audio

from . import alive_stills, lipsync
from .report import verdict
from .session import BITRATE_KBPS, FPS, SIZES

TEXTS = [
    "When the last of the evening light had faded behind the hills, the travellers lit a "
    "small fire, shared what little bread they had left, and talked quietly about the long "
    "road that still lay ahead of them.",
    "Have you ever wondered why the sky is blue at noon, but turns red and orange at sunset?",
    "No, I said the blue box, not the red one! It really, truly matters.",
]
PROMPT = "Why do rainbows appear after the rain?"
ASK_DELAY_S = 3.0
GAP_S = 3.0  # idle between the texts


@dataclass
class ThinkingChat(ChatServer):
    """The local chat server, taking ASK_DELAY_S before its answer's first word, as a model
    thinks."""

    first_delay_s: float = ASK_DELAY_S

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.first_delay_s)
        return await super()._chat(request)


def _frames(daemon: DaemonProc) -> int:
    return int(daemon.wait_for(lambda s: True, 10, "status")["frames_sent"])


def _air(daemon: DaemonProc, queue: str, body: dict[str, Any]) -> int:
    """Publish and wait until it aired and the face is idle again; the frame it was sent at."""
    at = _frames(daemon)
    publish(queue, body)
    daemon.wait_for(lambda s: daemon.outcomes(s).get(body["id"]) == "aired"
                    and s["state"] == "idle", 180, f"{body['id']} aired")
    return at


def record(work: Path, minutes: float, width: int, height: int, size: str
           ) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    """Run the programme; (the recording, the transcript's entries, marks: frames at which
    things were published, and the daemon's last status)."""
    ensure_rabbitmq()
    server, queues = NginxRtmp(work / "nginx"), QueueNames.unique()
    transcript = work / "aired.jsonl"
    marks: dict[str, Any] = {}
    server.start()
    try:
        with ThinkingChat() as chat:
            url = server.url(f"alive{uuid.uuid4().hex[:8]}")
            # Connected before the daemon starts: recording frame n is stream frame n.
            receiver = Receiver(url, work / "received.flv", idle_timeout_s=60)
            daemon = DaemonProc(work / "daemon", queues, {
                "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url]),
                # The defaults that harness/daemon.py lowers for the tests, put back.
                "AVATARCAST_VIDEO__WIDTH": str(width), "AVATARCAST_VIDEO__HEIGHT": str(height),
                "AVATARCAST_VIDEO__BITRATE_KBPS": str(BITRATE_KBPS[size]),
                "AVATARCAST_VIDEO__PRESET": "veryfast",
                "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript),
                "AVATARCAST_LLM__BASE_URL": chat.base_url, "AVATARCAST_LLM__API_KEY": KEY,
            })
            try:
                st = daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"],
                                     180, "ready")
                marks["animator"] = st.get("animator")
                idle = round(minutes * 60 * FPS)
                daemon.wait_for(lambda s: s["frames_sent"] >= idle, minutes * 60 + 120,
                                f"{minutes} min of idle")
                marks["texts"] = []
                for i, text in enumerate(TEXTS):
                    marks["texts"].append(_air(daemon, queues.speak,
                                               {"type": "speak", "id": f"text{i}", "text": text}))
                    _wait_frames(daemon, GAP_S)
                marks["ask"] = _air(daemon, queues.speak,
                                    {"type": "ask", "id": "ask", "prompt": PROMPT})
                _wait_frames(daemon, GAP_S)
                marks["status"] = daemon.status()
                assert daemon.stop() == 0, daemon.log()[-3000:]
            finally:
                daemon.kill()
                receiver.finish()
    finally:
        server.stop()
        delete_queues(queues)
    aired = [json.loads(x) for x in transcript.read_text().splitlines()]
    return receiver.out, aired, marks


def _wait_frames(daemon: DaemonProc, seconds: float) -> None:
    until = _frames(daemon) + round(seconds * FPS)
    daemon.wait_for(lambda s: s["frames_sent"] >= until, seconds + 30, "idle between")


def _end_frame(entry: dict[str, Any]) -> int:
    ends = [p[1] for p in entry["phones"]] + [w[1] for w in entry["words"]]
    return int(np.ceil(max(ends) * FPS)) if ends else int(entry["frame"])


def windows(aired: list[dict[str, Any]], marks: dict[str, Any]) -> dict[str, list[tuple[int,
                                                                                         int]]]:
    """Stream frames of each state: idle (before the first text), speech (every aired text and
    answer), thinking (the ask published, its answer not yet on air), answer. The publish
    frames come from /healthz's frames_sent, read as the message went out (a frame or two
    early)."""
    speech = [(int(e["frame"]), _end_frame(e)) for e in aired]
    answer = [(int(e["frame"]), _end_frame(e)) for e in aired if e["id"] == "ask"]
    first_answer = min((a for a, _ in answer), default=marks["ask"])
    # Idle from the third second: the encoder's first frames settle (frame 0 against 1 is the
    # largest step of a still picture).
    return {"idle": [(2 * FPS, marks["texts"][0])], "speech": speech,
            "thinking": [(marks["ask"], first_answer)], "answer": answer}


def lip_figures(recording: Path, aired: list[dict[str, Any]],
                series: dict[str, np.ndarray], landmarkers: list[str]) -> dict[str, Any]:
    """bench/lipsync.py's figures, from the mouth this pass measured (its `measure` would run
    both landmarkers over the recording a second time). Its helpers are used as they are; the
    span it judges runs from the first text to the answer's end, thinking and gaps included."""
    video = packets(recording, "v")[:, 0]
    audio_pts = packets(recording, "a")[:, 0]
    n = min(len(video), len(series["head_x"]))
    video = video[:n]
    first = min(e["frame"] for e in aired)
    last = max(_end_frame(e) for e in aired)
    span = slice(max(0, first - 15), min(n, last + 15))
    env = lipsync._envelope(decode_audio(recording, lipsync.RATE), float(audio_pts[0]), video)
    phones = [p for e in aired for p in e["phones"]]
    labels = [lipsync._phone_at(phones, (k + 0.5) / FPS) for k in range(n)]
    quiet = env < 0.02 * float(env[span].max())
    silent = [k for k in range(span.start, span.stop) if quiet[max(0, k - 2) : k + 3].all()]
    out: dict[str, Any] = {}
    for name in landmarkers:
        f = lipsync._figures(series[f"{name}.mouth_open"][:n], series[f"{name}.mouth_width"][:n],
                             first, span, phones, labels, silent, env)
        f.pop("series")
        out[name] = f
    return out


def measure(recording: Path, width: int, height: int
            ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Each landmarker's pass in a process of its own (2 cores: twice as fast); the picture's
    measures ride with MediaPipe's."""
    names = ["mediapipe"]
    if importlib.util.find_spec("dlib") and importlib.util.find_spec("face_recognition_models"):
        names.append("dlib")
    else:
        print("dlib is not installed (pip install -r requirements-bench.txt): MediaPipe only")
    with ProcessPoolExecutor(len(names)) as pool:
        jobs = [pool.submit(measure_file, recording, width, height, FPS, name, k == 0)
                for k, name in enumerate(names)]
        return merge(*(j.result() for j in jobs))


def run(work: Path, minutes: float = 3.0, size: str = "720p"
        ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(figures for the JSON, per-frame series for the chart)."""
    width, height = SIZES[size]
    recording, aired, marks = record(work, minutes, width, height, size)
    series, info = measure(recording, width, height)
    spans = windows(aired, marks)
    alive = summarize(series, info, spans)
    for path in alive_stills.make(recording, width, height, series, spans):
        print(f"wrote {path}")
    st = marks.get("status") or {}
    return {
        "size": size, "idle_minutes": minutes, "texts": len(TEXTS), "ask_delay_s": ASK_DELAY_S,
        "animator": marks.get("animator"),
        "daemon": {k: st.get(k) for k in ("frames_sent", "frames_dropped", "frames_late")},
        "spans": spans, "alive": alive,
        "lipsync": lip_figures(recording, aired, series, info["landmarkers"]),
    }, series


def _v(x: Any, unit: str = "") -> str:
    return "n/a" if x is None else f"{x}{unit}"


def _in(x: float | None, lo: float, hi: float) -> str:
    return verdict(None if x is None else lo <= x <= hi)


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table: targets from issue 27 and DESIGN.md's "numbers to start from"."""
    a = f["alive"]
    out: list[tuple[str, ...]] = []
    for name, b in a["blinks"].items():
        for w, target, lo, hi in (("idle", "10-25 (about 17)", 10, 25),
                                  ("speech", "5-26 (issue: fewer than idle; DESIGN: 24-26)",
                                   5, 26)):
            v = b.get(w, {})
            out.append((f"blinks a minute, {w} ({name})",
                        f"{_v(v.get('per_minute'))} ({v.get('count', 0)} in "
                        f"{_v(v.get('minutes'))} min)", target,
                        _in(v.get("per_minute"), lo, hi)))
        v = b["all"]
        d, c, o = v["duration_ms"], v["closing_ms"], v["opening_ms"]
        out.append((f"blink duration ({name})", f"median {_v(d['median'], ' ms')}, p95 "
                    f"{_v(d['p95'], ' ms')}; closing {_v(c['median'], ' ms')}, opening "
                    f"{_v(o['median'], ' ms')}", "100-400 ms, opening ~2x closing",
                    _in(d["median"], 100, 400)))
        iv = v["intervals"]
        out.append((f"blink intervals ({name})", f"median {_v(iv.get('median_s'), ' s')}, CV "
                    f"{_v(iv.get('cv'))}, skew {_v(iv.get('skew'))}; closed "
                    f"{_v(v['closed_share'])}, doubles {v['doubles']}, partial "
                    f"{v['partial_closures']}; openness noise SD {_v(v['open_sd'])}",
                    "skew > 1, not a metronome", verdict(None if iv.get("skew") is None
                                                         else iv["skew"] > 1)))
    for w in ("idle", "speech", "thinking"):
        h = a["head"].get(w, {})
        if "x_px" not in h:
            continue
        out.append((f"head motion, {w}", f"x SD {h['x_px']['sd']} px (range "
                    f"{h['x_px']['range']}), y SD {h['y_px']['sd']} px (range "
                    f"{h['y_px']['range']}), roll SD {h['roll_deg']['sd']} deg (range "
                    f"{h['roll_deg']['range']})", "a few px, a degree or two", ""))
        out.append((f"largest step, {w}", f"{h['step_px']['max']} px, "
                    f"{h['step_deg']['max']} deg (p99 {h['step_px']['p99']} px, "
                    f"{h['step_deg']['p99']} deg)", "smooth", ""))
    dr = a["head_drift"]
    out.append((f"drift in idle, first {dr['window_s']} s to last", f"x {dr['x_px']} px, y "
                f"{dr['y_px']} px, roll {dr['roll_deg']} deg", "none", ""))
    br = a["breathing"].get("idle", {})
    out.append(("breathing, idle", f"{_v(br.get('rate_cpm'))} a minute (counted "
                f"{_v(br.get('cycles_per_minute'))}), {_v(br.get('sine_p2p_px'), ' px')} "
                f"peak to peak (range {_v(br.get('range_px'), ' px')}, sine share "
                f"{_v(br.get('sine_share'))})", "12-20 a minute, 4-6 px",
                verdict(None) if "sine_p2p_px" not in br else
                _in(br.get("rate_cpm"), 12, 20) if br["sine_p2p_px"] >= 1 else verdict(False)))
    for name, g in a["gaze"].items():
        idle, think = g.get("idle", {}), g.get("thinking", {})
        out.append((f"gaze, thinking vs idle ({name})", "x " + ", ".join(
            f"{k} SD {_v(v.get('x', {}).get('sd'))}" for k, v in (("idle", idle),
                                                                   ("thinking", think)))
            + "; y " + ", ".join(f"{k} median {_v(v.get('y', {}).get('median'))}"
                                 for k, v in (("idle", idle), ("thinking", think))),
            "a glance up or aside", ""))
    for name, b in a["brows"].items():
        out.append((f"brows ({name})", ", ".join(
            f"{w} SD {_v(b.get(w, {}).get('sd'))}" for w in ("idle", "speech")),
            "lift on emphasis or a question", ""))
    out.append(("faces not found", ", ".join(f"{k} {v}" for k, v in
                                             a["faces_not_found"].items()) +
                f" of {a['frames']}", "0", verdict(not any(a["faces_not_found"].values()))))
    d = f["daemon"]
    out.append(("daemon frames", f"sent {d['frames_sent']}, dropped {d['frames_dropped']}, "
                f"late {d['frames_late']}", "0 dropped", verdict(d["frames_dropped"] == 0)))
    for name, v in f["lipsync"].items():
        out.append((f"lip-sync ({name})", f"envelope r {v['envelope_corr_lag0']} (best "
                    f"{v['envelope_corr_best']} at {v['envelope_best_lag_frames']}); /m b p/ "
                    f"closed {v['mbp_closed']['share']:.0%} of {v['mbp_closed']['n']}; silent "
                    f"closed {v['silent_closed']['share']:.0%}", "as `make lipsync`", ""))
    return out


def draw(record: dict[str, Any], path: Path, series: dict[str, np.ndarray]) -> None:
    """Per frame: eye openness (blinks marked), head x/y and roll, the body band, brows and
    gaze; idle unshaded, speech green, thinking orange."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    a = f["alive"]
    t = np.arange(a["frames"]) / FPS
    fig, axes = plt.subplots(5, 1, figsize=(18, 16), sharex=True)
    fig.suptitle(f"avatarcast alive, from the received stream ({f['size']}, animator "
                 f"{f['animator']}), {record['stamp']}, commit {record['versions']['commit']}")
    for ax in axes:
        for name, colour in (("speech", "tab:green"), ("thinking", "tab:orange")):
            for s0, s1 in f["spans"][name]:
                ax.axvspan(s0 / FPS, s1 / FPS, color=colour, alpha=0.12, lw=0)
    ax = axes[0]
    for name, colour in zip(a["landmarkers"], ("tab:blue", "tab:purple"), strict=False):
        for side, ls in (("l", "-"), ("r", ":")):
            o = series[f"{name}.open_{side}"][: len(t)]
            ax.plot(t, o / np.nanmedian(o), ls, color=colour, lw=0.7,
                    label=f"{name}, {'left' if side == 'l' else 'right'} eye")
        for s0, _, _ in a["blink_events"][name]:
            ax.axvline(s0 / FPS, color=colour, alpha=0.5, lw=0.8)
    ax.axhline(0.8, color="k", ls=":", lw=0.6)
    ax.axhline(0.5, color="k", ls="--", lw=0.6)
    ax.set(title="eye openness / its median (vertical lines: blinks)", ylim=(0, 1.4))
    ax.legend(loc="lower left", fontsize=8)
    for ax, key, label in ((axes[1], "head_x", "x"), (axes[1], "head_y", "y")):
        ax.plot(t, series[key][: len(t)], lw=0.8, label=f"head {label} (picture)")
        ax.plot(t, series[f"mediapipe.pose_{label}"][: len(t)], lw=0.5, alpha=0.5,
                label=f"head {label} (mediapipe landmarks)")
    axes[1].set(title="head translation, px", ylabel="px")
    axes[1].legend(loc="lower left", fontsize=8)
    axes[2].plot(t, series["head_roll"][: len(t)], lw=0.8, label="roll (picture)")
    axes[2].plot(t, series["mediapipe.pose_roll"][: len(t)], lw=0.5, alpha=0.5,
                 label="roll (mediapipe landmarks)")
    axes[2].set(title="head roll, degrees (clockwise on screen +)", ylabel="deg")
    axes[2].legend(loc="lower left", fontsize=8)
    axes[3].plot(t, series["body_y"][: len(t)], lw=0.8, color="tab:brown")
    axes[3].set(title="body band below the chin, vertical shift (down +), px", ylabel="px")
    ax = axes[4]
    for name in a["landmarkers"]:
        b = series[f"{name}.brows"][: len(t)]
        ax.plot(t, b / np.nanmedian(b) - 1, lw=0.7, label=f"brows {name} (/ median - 1)")
    for key in ("gaze_x", "gaze_y"):
        ax.plot(t, series[f"mediapipe.{key}"][: len(t)], lw=0.7, label=f"{key} (eye widths)")
    ax.set(title="brows and gaze", xlabel="stream seconds")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
