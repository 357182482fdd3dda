"""The PNG chart of a run: drift per minute, frames per minute, time to air by part, idle CPU
against the FFmpeg-alone floor, resident memory over time, animator speed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PART_ORDER = ("queue", "tts", "render", "schedule", "encoder")


def draw(record: dict[str, Any], path: Path) -> None:
    f = record["figures"]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    fig.suptitle(f"avatarcast {record['kind']} benchmark, {record['stamp']}, "
                 f"commit {record['versions']['commit']}")
    minutes = f.get("cadence", {}).get("per_minute", [])
    ax = axes[0][0]
    if minutes:
        x = [r["minute"] for r in minutes]
        ax.plot(x, [r.get("av_drift_ms") for r in minutes], "o-", label="A/V drift")
        ax.plot(x, [r.get("stream_vs_wall_ms") for r in minutes], "s-", label="stream vs wall")
        ax.axhspan(-1000 / 30, 1000 / 30, color="green", alpha=0.1, label="one frame")
        ax.legend()
    ax.set(title="Drift at the end of each minute", xlabel="minute", ylabel="ms")
    ax = axes[0][1]
    if minutes:
        x = [r["minute"] for r in minutes]
        ax.bar(x, [r.get("frames_dropped", 0) + r.get("frames_duplicated", 0) for r in minutes],
               color="tab:red", label="dropped + duplicated")
        ax2 = ax.twinx()
        ax2.plot(x, [r.get("largest_gap_ms") for r in minutes], "k.-", label="largest gap")
        ax2.set_ylabel("largest gap between frames, ms")
        ax.legend(loc="upper left")
    ax.set(title="Frames per minute", xlabel="minute", ylabel="frames")
    ax = axes[0][2]
    air = f.get("time_to_air")
    if air and air["first_speech"].get("n"):
        left = 0.0
        for part in PART_ORDER:
            ms = air["parts"][part].get("median", 0)
            ax.barh(["say -> speech"], [ms], left=left, label=part)
            left += ms
        ax.barh(["say -> speech"], [0])
        mv = air["first_mouth_movement"].get("median")
        if mv is not None:
            ax.axvline(mv, color="k", ls="--", label="first mouth movement")
        ax.axvline(1000, color="red", ls=":", label="target 1 s")
        ax.legend(fontsize=8)
    ax.set(title="Time to air, medians by part", xlabel="ms")
    ax = axes[1][0]
    cost = f.get("idle_cpu", {})
    if cost:
        names = list(cost)
        ours = [cost[n]["daemon_pct"] + cost[n]["daemon_ffmpeg_pct"] for n in names]
        base = [cost[n]["baseline_ffmpeg_pct"] for n in names]
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], ours, 0.4, label="daemon + its FFmpeg")
        ax.bar([x + 0.2 for x in xs], base, 0.4, label="FFmpeg alone")
        for x, n in zip(xs, names, strict=True):
            ax.text(x, max(ours[x], base[x]) * 1.02, f"x{cost[n]['ratio']}", ha="center")
        ax.set_xticks(list(xs), names)
        ax.legend()
    ax.set(title="Idle CPU (percent of one core)", ylabel="%")
    ax = axes[1][1]
    mem = f.get("memory", {}).get("samples", [])
    if mem:
        ax.plot([r["t_s"] / 60 for r in mem], [r["daemon"] for r in mem], label="daemon")
        ax.plot([r["t_s"] / 60 for r in mem], [r["ffmpeg"] for r in mem], label="FFmpeg")
        ax.legend()
    ax.set(title="Resident memory", xlabel="minutes", ylabel="MiB")
    ax = axes[1][2]
    lite = f.get("renderers", {}).get("lite", {})
    sizes = [k for k in ("480p", "720p", "1080p") if k in lite]
    if sizes:
        ax.bar(sizes, [lite[k]["fps"] for k in sizes], color="tab:purple")
        ax.axhline(30, color="red", ls=":", label="30 fps (real time)")
        ax.axhline(90, color="orange", ls=":", label="3x real time")
        ax.legend()
    ax.set(title="lite animator, one core", ylabel="frames per second")
    for ax in axes.flat:
        if not ax.has_data():  # a soak measures no time to air, CPU or animator
            ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def draw_pipeline(record: dict[str, Any], path: Path) -> None:
    """Each cut's time from the last loud tick written to the last loud audio received."""
    f = record["figures"]
    fig, ax = plt.subplots(figsize=(8, 5))
    sizes = list(f)
    for x, size in enumerate(sizes):
        ms = f[size]["cut_ms"]
        ax.plot([x] * len(ms), ms, "o", alpha=0.5)
    ax.axhline(100, color="red", ls=":", label="skip/interrupt target, 100 ms p95")
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set(title=f"Cut written -> last sound at the client, {record['stamp']}",
           ylabel="ms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
