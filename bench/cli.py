"""python -m bench (from a checkout): the quick suite (`make bench`) and the soak.

  python -m bench [quick] [--no-musetalk]     every figure, about 9 minutes on 2 cores
  python -m bench soak --minutes 60           720p on air for an hour, a message every 20 s
  python -m bench pipeline                    the encoder's share of a cut, about 2 minutes
  python -m bench memory                      resident memory vs. the longest text, 4 minutes
  python -m bench lipsync                     the mouth on the received stream vs. the speech
  python -m bench stills                      README stills and a clip from the received stream
  python -m bench scene-stills                stills of a full scene (docs/img/scene-*.png)
  python -m bench renderers [--no-musetalk]   TTS real-time factors, animator cost per frame
  python -m bench console                     the daemon's CPU with the web console watched
  python -m bench ask                         publish -> first frame on air for an LLM answer
  python -m bench chat                        the chat moderator: messages a second, memory
  python -m bench scene                       the scene's layers: ms per frame, 720p and 1080p
  python -m bench fleet                       a channel's failover: owner killed -> video again
  python -m bench cluster                     a three-node RabbitMQ cluster: the owner's node
                                              killed, and what quorum queues and the ledger cost
  python -m bench capacity [--minutes 10]     720p30 channels one machine carries, CPU split
  python -m bench webrtc                      the WebRTC view's delay vs RTMP, and its CPU
  python -m bench alive [--minutes 3] [--size 720]
                                              blinks, head motion, breathing on the received
                                              stream: idle, speech, thinking (about 2M + 3 min)
  python -m bench motion                      the face's motion in the daemon: CPU, late, held
  python -m bench summary                     the headline figures beside earlier runs' (no run)

Benchmarks report; they assert nothing. Each run writes bench/results/<stamp>-<kind>.json and
a PNG chart, prints the table, and keeps it in docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import contextlib
import functools
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avatarcast.infra.malloc import return_big_blocks_to_the_os

from . import (
    air,
    alive,
    ask,
    cadence,
    capacity,
    chart,
    chat,
    cluster,
    console,
    cost,
    fleet,
    lipsync,
    memory,
    motion,
    pipeline,
    renderers,
    report,
    scene,
    scene_stills,
    stills,
    summary,
    webrtc,
)
from .probes import AudioWatch, MouthWatch, PacketLog
from .session import BITRATE_KBPS, FPS, PRESET, SIZES, Session

ONE_FRAME_MS = 1000 / FPS


@contextlib.contextmanager
def _clients(*clients: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for c in clients:
            c.close()


def _stream_figures(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with Session(work / "720p", "720p") as s:
        packets = PacketLog(s.url)
        audio = AudioWatch(s.url)
        mouth = MouthWatch(s.url, s.mouth_box())
        memory = cost.MemorySampler(s.pids(), every=5)
        with _clients(packets, audio, mouth):
            time.sleep(4)  # the clients' start-up (stream probing)
            t_idle = time.time()
            time.sleep(args.idle_s)
            t_speech = time.time()
            figures["time_to_air"] = air.time_to_air(s, audio, mouth, args.messages)
            figures["skip"] = air.skip_latency(s, audio, args.skips)
            figures["interrupt"] = air.interrupt_latency(s, audio, args.interrupts)
            t_end = time.time()
            st = s.wait_idle()
        figures["memory"] = memory.stop()
        figures["cadence"] = {
            "idle": cadence.summary(packets.packets, FPS, t_idle, t_speech),
            "speaking": cadence.summary(packets.packets, FPS, t_speech, t_end),
            "whole": cadence.summary(packets.packets, FPS),
            "per_minute": cadence.per_minute(packets.packets, FPS),
            "daemon": {k: st[k] for k in ("frames_sent", "frames_dropped", "frames_late")},
        }
        figures["idle_cpu"] = {"720p": cost.idle_cpu(s, args.cpu_s)}
    for size in ("480p", "1080p"):
        with Session(work / size, size) as s:
            figures["idle_cpu"][size] = cost.idle_cpu(s, args.cpu_s)
    figures["idle_cpu"] = {k: figures["idle_cpu"][k] for k in SIZES}
    return figures


def quick(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="avatarcast-bench-") as tmp:
        figures = _stream_figures(Path(tmp), args)
    tts, speech_16k = renderers.tts()
    figures["renderers"] = {"tts": tts, **renderers.lite_figures(speech_16k)}
    if not args.no_musetalk:
        figures["renderers"]["musetalk"] = renderers.musetalk()
    return figures


def soak(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="avatarcast-soak-") as tmp, \
            Session(Path(tmp), "720p") as s:
        packets = PacketLog(s.url)
        memory = cost.MemorySampler(s.pids(), every=10)
        said = 0
        with _clients(packets):
            end = time.time() + args.minutes * 60
            next_say = time.time() + 5
            while time.time() < end:
                if time.time() >= next_say:
                    s.say(f"soak{said}-{time.monotonic_ns()}", air.SHORT)
                    said += 1
                    next_say += args.say_every
                time.sleep(0.5)
            st = s.wait_idle()
        figures["memory"] = memory.stop()
        figures["cadence"] = {
            "whole": cadence.summary(packets.packets, FPS),
            "per_minute": cadence.per_minute(packets.packets, FPS),
            "daemon": {k: st[k] for k in ("frames_sent", "frames_dropped", "frames_late")},
            "messages": said,
            # /healthz keeps the last 50 outcomes
            "recent_aired": sum(1 for e in st["recent"] if e["outcome"] == "aired"),
            "recent": len(st["recent"]),
        }
    return figures


def pipeline_rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for size, v in f.items():
        for key, label in (("cut_to_last_sound", "cut written -> last sound"),
                           ("onset_to_first_sound", "sound written -> first sound")):
            s = v[key]
            out.append((f"{label}, {size}", f"median {s.get('median')} ms, p95 {s.get('p95')} "
                        f"ms, max {s.get('max')} ms, n={s['n']}", "", ""))
    return out


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    cad = f.get("cadence", {})
    for phase in ("idle", "speaking", "whole"):
        c = cad.get(phase)
        if not c or "error" in c:
            continue
        bad = c["frames_dropped"] + c["frames_duplicated"]
        out.append((f"frames {phase} ({c['seconds']:.0f} s)",
                    f"{c['frames_received']} of {c['frames_expected']}, {c['frames_dropped']} "
                    f"dropped, {c['frames_duplicated']} dup, gap max {c['largest_gap_ms']} ms",
                    "0 dropped or duplicated", report.verdict(bad == 0)))
    if (c := cad.get("whole")) and "error" not in c:
        out.append(("A/V drift at the end", f"{c['av_drift_ms']} ms", "within one frame (33 ms)",
                    report.verdict(abs(c["av_drift_ms"]) <= ONE_FRAME_MS)))
        ahead = c["stream_vs_wall_ms"]
        out.append(("stream clock vs wall clock", f"{ahead} ms", "within one frame",
                    report.verdict(abs(ahead) <= ONE_FRAME_MS)))
    if d := cad.get("daemon"):
        out.append(("daemon's own count", f"sent {d['frames_sent']}, dropped "
                    f"{d['frames_dropped']}, late ticks {d['frames_late']}", "", ""))
    if air_f := f.get("time_to_air"):
        sp, mv = air_f["first_speech"], air_f["first_mouth_movement"]
        out.append(("say -> first speech (client)", f"median {sp.get('median')} ms, p95 "
                    f"{sp.get('p95')} ms, n={sp['n']}", "median <= 1000 ms",
                    report.verdict(sp.get("median", 1e9) <= 1000) if sp["n"] else "n/a"))
        out.append(("say -> first mouth movement", f"median {mv.get('median')} ms, p95 "
                    f"{mv.get('p95')} ms, n={mv['n']}", "", ""))
        parts = ", ".join(f"{k} {v.get('median')}" for k, v in air_f["parts"].items())
        out.append(("  split (medians, ms)", parts, "", ""))
    if sk := f.get("skip"):
        s = sk["skip_to_last_speech"]
        out.append(("skip -> last speech (client)", f"median {s.get('median')} ms, p95 "
                    f"{s.get('p95')} ms, n={s['n']}", "p95 <= 100 ms",
                    report.verdict(s.get("p95", 1e9) <= 100) if s["n"] else "n/a"))
    if it := f.get("interrupt"):
        s = it["interrupt_to_last_old_speech"]
        out.append(("interrupt -> last old speech (client)", f"median {s.get('median')} ms, "
                    f"p95 {s.get('p95')} ms, n={s['n']}", "p95 <= 100 ms",
                    report.verdict(s.get("p95", 1e9) <= 100) if s["n"] else "n/a"))
        if cut_parts := it.get("parts"):
            split = ", ".join(f"{k} {v.get('median')}/{v.get('p95')}"
                              for k, v in cut_parts.items())
            out.append(("  split (median/p95, ms)", split, "", ""))
        s = it["interrupt_to_first_new_speech"]
        out.append(("interrupt -> first new speech (client)", f"median {s.get('median')} ms, "
                    f"p95 {s.get('p95')} ms, n={s['n']}", "", ""))
    for size, c in f.get("idle_cpu", {}).items():
        out.append((f"idle CPU {size}", f"daemon {c['daemon_pct']}% + FFmpeg "
                    f"{c['daemon_ffmpeg_pct']}% vs alone {c['baseline_ffmpeg_pct']}%: "
                    f"x{c['ratio']}", "<= x1.15",
                    report.verdict(c["ratio"] is not None and c["ratio"] <= 1.15)))
    if (m := f.get("memory")) and "start_mb" in m:
        span_s = m["samples"][-1]["t_s"]
        trend = (f", second half {m['second_half_slope_mb_per_h']} MiB/h" if span_s >= 600
                 else f" over {span_s / 60:.0f} min (a trend needs the soak)")
        out.append(("resident memory (daemon + FFmpeg)", f"{m['start_mb']:.0f} -> "
                    f"{m['end_mb']:.0f} MiB (max {m['max_mb']:.0f}){trend}", "flat", ""))
    r = f.get("renderers", {})
    for name, t in r.get("tts", {}).items():
        out.append((f"TTS {name}", f"RTF {t['rtf']}, first audio {t['first_audio_ms']} ms"
                    if "rtf" in t else f"unavailable: {t['unavailable'][:60]}", "", ""))
    for kind, label in (("lite", "lite animator"), ("lite_atlas", "lite with a mouth atlas")):
        for size in SIZES:
            if size not in r.get(kind, {}):
                continue
            v = r[kind][size]
            out.append((f"{label} {size}, one core", f"{v['fps']} fps "
                            f"(x{v['x_real_time']} real time), "
                            f"{v.get('ms_per_frame_median')} ms/frame median, "
                            f"p95 {v.get('ms_per_frame_p95')}; captions "
                            f"+{v.get('captions_ms_per_frame')} ms",
                            ">= x3" if size != "480p" else "",
                            report.verdict(v["x_real_time"] >= 3) if size != "480p" else ""))
    if rm := r.get("remote", {}).get("720p"):
        out.append(("remote animator 720p (serve-face with lite, same machine)",
                    f"{rm['fps']} fps (x{rm['x_real_time']} real time)", "", ""))
    if mt := r.get("musetalk"):
        for k, v in mt.items():
            if k.startswith("batch"):
                out.append((f"MuseTalk {k[5:]}/batch, {mt['device']}", f"UNet {v['unet_ms']} + "
                            f"VAE {v['vae_ms']} = {v['total_ms']} ms/frame", "", ""))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", nargs="?",
                    choices=("quick", "soak", "pipeline", "memory", "lipsync", "stills",
                             "renderers", "console", "ask", "chat", "fleet", "cluster",
                             "webrtc", "capacity", "alive", "motion", "scene", "scene-stills",
                             "summary"),
                    default="quick")
    ap.add_argument("--minutes", type=float, default=60,
                    help="soak length (alive: minutes of idle, default 3)")
    ap.add_argument("--say-every", type=float, default=20, help="soak: seconds between says")
    ap.add_argument("--idle-s", type=float, default=45, help="quick: idle cadence window")
    ap.add_argument("--messages", type=int, default=20, help="quick: time-to-air messages")
    ap.add_argument("--skips", type=int, default=20)
    ap.add_argument("--interrupts", type=int, default=20)
    ap.add_argument("--cpu-s", type=float, default=15, help="idle CPU window per size")
    ap.add_argument("--cuts", type=int, default=20, help="pipeline: cuts per size")
    ap.add_argument("--speak-s", type=float, default=40, help="memory: seconds sampled on air")
    ap.add_argument("--no-musetalk", action="store_true")
    ap.add_argument("--max-channels", type=int, default=12, help="capacity: channels at most")
    ap.add_argument("--from-channels", type=int, default=1, help="capacity: the first step")
    ap.add_argument("--workers", type=int, default=2,
                    help="capacity: worker processes sharing the channels (one per core)")
    ap.add_argument("--preset", default="superfast", help="capacity: the channels' x264 preset")
    ap.add_argument("--queue-frames", type=int, default=None,
                    help="capacity: the channels' output.queue_frames (default: the daemon's)")
    ap.add_argument("--alive", choices=("auto", "on", "off"), default=None,
                    help="capacity: the channels' alive.enabled (default: the daemon's)")
    ap.add_argument("--scene", action="store_true",
                    help="capacity: every channel with a full scene (its own table)")
    ap.add_argument("--scene-video", action="store_true",
                    help="capacity: the full scene with a looping video behind the person")
    ap.add_argument("--size", type=int, choices=(480, 720, 1080), default=720,
                    help="alive: the output's height")
    ap.add_argument("--out", type=Path, default=report.ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    if args.kind == "stills":
        stills.main()
        return
    if args.kind == "scene-stills":
        scene_stills.main()
        return
    if args.kind == "summary":
        print(summary.update())
        return
    stamp = time.strftime("%Y%m%dT%H%M%S")
    t = time.monotonic()
    series: dict[str, Any] = {}  # alive: the per-frame measures, for its chart only
    if args.kind == "pipeline":
        with tempfile.TemporaryDirectory(prefix="avatarcast-pipeline-") as tmp:
            figures = pipeline.run(Path(tmp), args.cuts)
    elif args.kind == "memory":
        with tempfile.TemporaryDirectory(prefix="avatarcast-memory-") as tmp:
            figures = memory.run(Path(tmp), args.speak_s)
    elif args.kind == "renderers":
        # Big blocks from mmap, as the daemon has them (infra/malloc.py): a renderer whose
        # temporaries cross that line pays page faults on every frame in the daemon.
        return_big_blocks_to_the_os()
        tts, speech_16k = renderers.tts()
        figures = {"renderers": {"tts": tts, **renderers.lite_figures(speech_16k)}}
        if not args.no_musetalk:
            figures["renderers"]["musetalk"] = renderers.musetalk()
    elif args.kind == "console":
        figures = console.measure()
    elif args.kind == "ask":
        figures = ask.measure()
    elif args.kind == "chat":
        figures = chat.measure()
    elif args.kind == "scene":
        figures = scene.measure()
    elif args.kind == "fleet":
        figures = fleet.run_all()
    elif args.kind == "cluster":
        figures = cluster.measure()
    elif args.kind == "capacity":
        figures = capacity.run_all(args.minutes if args.minutes != 60 else 10,
                                   args.from_channels, args.max_channels, args.workers,
                                   args.preset, args.queue_frames, args.alive, args.scene,
                                   args.scene_video)
    elif args.kind == "webrtc":
        figures = webrtc.measure()
    elif args.kind == "motion":
        figures = motion.measure()
    elif args.kind == "alive":
        with tempfile.TemporaryDirectory(prefix="avatarcast-alive-") as tmp:
            figures, series = alive.run(Path(tmp), args.minutes if args.minutes != 60 else 3,
                                        f"{args.size}p")
    elif args.kind == "lipsync":
        figures = {}
        # Phoneme timings, the sound alone, and phoneme timings with a mouth atlas.
        for name, provider, atlas in (("piper", "piper", False), ("espeak", "espeak", False),
                                      ("piper, atlas", "piper", True)):
            with tempfile.TemporaryDirectory(prefix="avatarcast-lipsync-") as tmp:
                figures[name] = lipsync.run(Path(tmp), "720p", provider, atlas)
    else:
        figures = quick(args) if args.kind == "quick" else soak(args)
    record = {
        "kind": args.kind, "stamp": stamp, "duration_s": round(time.monotonic() - t, 1),
        "machine": report.machine(), "versions": report.versions(),
        "settings": {"fps": FPS, "preset": PRESET, "bitrate_kbps": BITRATE_KBPS,
                     **({} if args.kind in ("pipeline", "alive")
                        else {"animator": "lite", "speech": "piper"}),
                     **{k: v for k, v in vars(args).items() if k not in ("out", "kind")}},
        "figures": figures,
    }
    if args.kind == "pipeline":
        report.write(args.kind, stamp, record, pipeline_rows(figures), args.out,
                     chart.draw_pipeline)
    elif args.kind == "memory":
        report.write(args.kind, stamp, record, memory.rows(figures), args.out, memory.draw)
    elif args.kind == "lipsync":
        report.write(args.kind, stamp, record, lipsync.rows(figures), args.out, lipsync.draw)
    elif args.kind == "console":
        report.write(args.kind, stamp, record, console.rows(figures), args.out, console.draw)
    elif args.kind == "ask":
        report.write(args.kind, stamp, record, ask.rows(figures), args.out, ask.draw)
    elif args.kind == "chat":
        report.write(args.kind, stamp, record, chat.rows(figures), args.out, chat.draw)
    elif args.kind == "scene":
        report.write(args.kind, stamp, record, scene.rows(figures), args.out, scene.draw)
    elif args.kind == "fleet":
        report.write(args.kind, stamp, record, fleet.rows(figures), args.out, fleet.draw)
    elif args.kind == "cluster":
        report.write(args.kind, stamp, record, cluster.rows(figures), args.out, cluster.draw)
    elif args.kind == "capacity":
        kind = ("capacity-scene-video" if args.scene_video else
                "capacity-scene" if args.scene else args.kind)
        report.write(kind, stamp, record,
                     capacity.rows(figures), args.out, capacity.draw)
    elif args.kind == "webrtc":
        report.write(args.kind, stamp, record, webrtc.rows(figures), args.out, webrtc.draw)
    elif args.kind == "motion":
        report.write(args.kind, stamp, record, motion.rows(figures), args.out, motion.draw)
    elif args.kind == "alive":
        report.write(args.kind, stamp, record, alive.rows(figures), args.out,
                     functools.partial(alive.draw, series=series))
    else:
        report.write(args.kind, stamp, record, rows(figures), args.out, chart.draw)
    summary.update()


if __name__ == "__main__":
    main()
