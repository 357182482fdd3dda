"""Time to air and interrupt/skip latency, from what a real RTMP client receives, split into
parts with the daemon's own wall-clock marks (its /healthz `recent` entries)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from .probes import AudioWatch, MouthWatch
from .session import Session

SHORT = "Hello, I am live."
# Six seconds of sound without a single pause (Piper's "lalala"), cut by a skip or an
# interrupt: the first silence the client hears after the control is the cut, never a pause
# in the speech (real sentences pause up to 330 ms in Piper, at commas).
HUM = "La" + "la" * 99
# Silence that marks the cut: longer than any gap inside HUM, shorter than the wait for the
# interrupting speech.
CUT_GAP_S = 0.15
# Daemon marks, in order, and the part of the way to air that ends at each.
PARTS = (
    ("queue", "received_at"),  # publish -> the daemon takes it from RabbitMQ
    ("start", "render_started_at"),  # -> the renderer starts on it
    ("tts", "tts_first_at"),  # -> the first synthesized audio
    ("render", "frames_first_at"),  # -> the animator's first frames
    ("schedule", "aired_at"),  # -> its first frame handed to the encoder
)


def stats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    v = sorted(values)
    p95 = v[min(len(v) - 1, round(0.95 * (len(v) - 1)))]
    return {"median": round(statistics.median(v) * 1000, 1), "p95": round(p95 * 1000, 1),
            "max": round(v[-1] * 1000, 1), "n": len(v)}


def time_to_air(s: Session, audio: AudioWatch, mouth: MouthWatch, n: int) -> dict[str, Any]:
    speech, moves, missed = [], [], 0
    parts: dict[str, list[float]] = {name: [] for name, _ in PARTS}
    parts["encoder"] = []
    for i in range(n):
        msg_id = f"air{i}-{time.monotonic_ns()}"
        t0 = s.say(msg_id, SHORT)
        heard = audio.first_loud_after(t0, 15)
        moved = mouth.first_move_after(t0, 15)
        entry = s.entry(msg_id)
        s.wait_idle()
        if heard is None or entry.get("aired_at") is None:
            missed += 1
            continue
        speech.append(heard - t0)
        if moved is not None:
            moves.append(moved - t0)
        last = t0
        for name, mark in PARTS:
            parts[name].append(entry[mark] - last)
            last = entry[mark]
        parts["encoder"].append(heard - last)
        time.sleep(0.5)
    return {
        "first_speech": stats(speech),
        "first_mouth_movement": stats(moves),
        "parts": {k: stats(v) for k, v in parts.items()},
        "missed": missed,
    }


def skip_latency(s: Session, audio: AudioWatch, n: int) -> dict[str, Any]:
    """`skip` published while HUM is on air -> its last sample received. HUM has no pauses,
    so a cut that lands in a pause of real speech cannot make the figure look better."""
    lat, outcomes = [], []
    for i in range(n):
        msg_id = f"skip{i}-{time.monotonic_ns()}"
        t0 = s.say(msg_id, HUM)
        if audio.first_loud_after(t0, 15) is None:
            continue
        time.sleep(0.7)
        t = s.control("skip")
        last = audio.last_loud_before_quiet(t, quiet_s=CUT_GAP_S, timeout=15)
        outcomes.append(s.entry(msg_id)["outcome"])
        s.wait_idle()
        if last is not None:
            lat.append(max(0.0, last - t))
        time.sleep(0.3)
    return {"skip_to_last_speech": stats(lat),
            "outcomes": {o: outcomes.count(o) for o in set(outcomes)}}


def interrupt_latency(s: Session, audio: AudioWatch, n: int) -> dict[str, Any]:
    """An interrupting message published while a long one is on air. The daemon cuts the old
    speech when the message arrives and airs the new one when its first frames are rendered;
    the old speech has no pauses, so the first silence the client hears after the interrupt
    is the cut: it tells the last sample of the old speech from the first of the new."""
    cut, new, outcomes = [], [], []
    # The way to the cut in parts: publish -> the daemon has the message -> the cut's tick went
    # to the encoder (wall clock) -> the client heard the old speech's last sound.
    parts: dict[str, list[float]] = {"broker": [], "daemon": [], "pipeline": []}
    for i in range(n):
        base = f"int{i}-{time.monotonic_ns()}"
        t0 = s.say(f"{base}-long", HUM)
        if audio.first_loud_after(t0, 15) is None:
            continue
        time.sleep(0.7)
        t = s.say(f"{base}-urgent", SHORT, interrupt=True)
        last = audio.last_loud_before_quiet(t, quiet_s=CUT_GAP_S, timeout=15)
        heard = audio.first_loud_after(last + CUT_GAP_S, 15) if last is not None else None
        old = s.entry(f"{base}-long")
        urgent = s.entry(f"{base}-urgent")
        s.wait_idle()
        outcomes.append(old["outcome"])
        if last is not None:
            cut.append(max(0.0, last - t))
            off = old.get("off_air_at")
            if off is not None and old["outcome"] == "interrupted":
                parts["broker"].append(urgent["received_at"] - t)
                parts["daemon"].append(off - urgent["received_at"])
                parts["pipeline"].append(last - off)
        if heard is not None:
            new.append(heard - t)
        time.sleep(0.3)
    return {"interrupt_to_last_old_speech": stats(cut),
            "interrupt_to_first_new_speech": stats(new),
            "parts": {k: stats(v) for k, v in parts.items()},
            # Each cut's parts in ms, in order: where a slow one lost its time.
            "cuts_ms": [[round(v[i] * 1000, 1) for v in parts.values()]
                        for i in range(len(parts["pipeline"]))],
            "outcomes": {o: outcomes.count(o) for o in set(outcomes)}}
