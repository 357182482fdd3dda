"""Cadence and drift from the packets a real RTMP client received.

Frames are counted from the video timestamps: at 30 fps every step is one frame (33 or 34 ms
on RTMP's millisecond clock); a longer step is a hole of round(step * fps) - 1 dropped frames,
a zero step a duplicate. A/V drift is the end of the audio received minus the end of the video
received (last timestamp plus duration), which resolves to about one packet (21 ms of audio,
33 ms of video). Stream-vs-wall is how far the stream's clock got ahead of the wall clock: the
least delay (arrival minus timestamp) of the video packets in the first minute minus the same
in the last minute, so the client's start-up burst and network jitter drop out. "Least" is
the 1st percentile: the daemon sends a speech's first three frames and a cut's two at once
(up to three frames ahead of its clock, then back on it), and those few per minute are not
the clock running ahead."""

from __future__ import annotations

from typing import Any

import numpy as np

from .probes import Packets


def _frames(dts: np.ndarray, fps: int) -> tuple[int, int, float]:
    """(dropped, duplicated, largest step in s) for a run of video timestamps."""
    if len(dts) < 2:
        return 0, 0, 0.0
    steps = np.diff(dts) * fps
    dropped = int(np.clip(np.round(steps) - 1, 0, None).sum())
    duplicated = int((np.round(steps) <= 0).sum())
    return dropped, duplicated, float(np.diff(dts).max())


def _select(p: Packets, kind: str, t0: float, t1: float) -> tuple[np.ndarray, ...]:
    arrival = np.asarray(p.arrival[kind])
    keep = (arrival >= t0) & (arrival < t1)
    return (arrival[keep], np.asarray(p.dts[kind])[keep], np.asarray(p.duration[kind])[keep])


def summary(p: Packets, fps: int, t0: float = 0.0, t1: float = float("inf")) -> dict[str, Any]:
    """Figures for the packets that arrived between wall times t0 and t1."""
    va, vd, vdur = _select(p, "v", t0, t1)
    _aa, ad, adur = _select(p, "a", t0, t1)
    if len(vd) < 2 or len(ad) < 2:
        return {"frames_received": len(vd), "error": "too few packets received"}
    dropped, duplicated, largest = _frames(vd, fps)
    span = vd[-1] - vd[0]
    return {
        "seconds": round(float(span + vdur[-1]), 3),
        "frames_received": len(vd),
        "frames_expected": round(span * fps) + 1,
        "frames_dropped": dropped,
        "frames_duplicated": duplicated,
        "largest_gap_ms": round(largest * 1000, 1),
        "largest_arrival_gap_ms": round(float(np.diff(va).max()) * 1000, 1),
        "av_drift_ms": round(float((ad[-1] + adur[-1]) - (vd[-1] + vdur[-1])) * 1000, 1),
        "stream_vs_wall_ms": round(_clock_offset(va, vd) * 1000, 1),
    }


def _clock_offset(arrival: np.ndarray, dts: np.ndarray, window_s: float = 60.0) -> float:
    delay = arrival - dts
    first = np.percentile(delay[arrival < arrival[0] + window_s], 1)
    last = np.percentile(delay[arrival >= arrival[-1] - window_s], 1)
    return float(first - last)


def per_minute(p: Packets, fps: int, minute_s: float = 60.0) -> list[dict[str, Any]]:
    """The same figures minute by minute (by arrival), drift measured from the first packet."""
    if not p.arrival["v"] or not p.arrival["a"]:
        return []
    start = min(p.arrival["v"][0], p.arrival["a"][0])
    end = max(p.arrival["v"][-1], p.arrival["a"][-1])
    rows = []
    k = 0
    while start + k * minute_s < end:
        t0, t1 = start + k * minute_s, start + (k + 1) * minute_s
        row = summary(p, fps, t0, t1)
        whole = summary(p, fps, start, t1)  # drift is cumulative
        row["minute"] = k + 1
        row["av_drift_ms"] = whole.get("av_drift_ms")
        row["stream_vs_wall_ms"] = whole.get("stream_vs_wall_ms")
        rows.append(row)
        k += 1
    return rows
