"""How many 720p30 channels one machine carries, and where the CPU goes.

First the encoder alone: the daemon's own x264 options at each preset on the same 10 s of the
portrait (a slow zoom, so that every frame changes: harder than an idle cycle), with the CPU
time a frame costs and the SSIM of what it encodes against the source.

Then the channels: 1, 2, 3 … 720p30 channels (lite animator, x264 at `--preset`, 2500 kb/s,
each to its own stream on nginx-rtmp, every channel given a text at the same moment every 20 s:
the worst case for a burst of speech and rendering) on `--workers` worker
processes sharing one channels file as a fleet (each takes its share, `fleet.capacity`), until
a frame is dropped (by a daemon, or missing at a client). Per step: frames dropped, late ticks
(a late tick still sends its frame) and frames held because an animator fell behind (the
picture held, a tick of silence in the speech), from the daemons' counts; frames received by a
client per stream; the CPU of the workers' Python and of their FFmpeg encoders.

  python -m bench capacity [--minutes 10] [--max-channels 12] [--from-channels 1]
                           [--workers 2] [--preset superfast] [--queue-frames N]
                           [--alive auto|on|off] [--scene | --scene-video]

`--scene` gives every channel a full scene (issue 30: a logo, the lower third, a ticker, a
clock, the AI label, a replaced background and a music bed ducking under speech; the file of
`python -m bench scene-stills` with a background), the figure to set beside the one without
(the AI label alone, the daemon's default). Its table is kept apart (`capacity-scene`).
`--scene-video` is the same scene with a looping video behind the person instead of a colour
(`capacity-scene-video`).

`--alive off` gives the figure without the face's motion (alive.enabled; the default is the
daemon's, `auto`, which moves the bundled portrait).

Dropped frames are told apart: those the pacers skipped after a stall of over half a second
(their log lines), and the rest, which did not fit the encoder's queue (FFmpeg behind by more
than `output.queue_frames`).
"""

from __future__ import annotations

import math
import re
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import ffmpeg

from avatarcast.onair.ffmpeg_args import x264_options
from avatarcast.settings import VideoSettings
from harness.daemon import DaemonProc, QueueNames, delete_queues, publish, write_channels
from harness.services import NginxRtmp, ensure_rabbitmq

from .air import SHORT
from .cadence import summary
from .probes import PacketLog
from .scene_stills import props
from .session import BITRATE_KBPS, FPS, SIZES, channels_worker, cpu_seconds, ffmpeg_children

PRESETS = ("ultrafast", "superfast", "veryfast", "faster")
CLIP_S = 10
PORTRAIT = Path(__file__).resolve().parents[1] / "src" / "avatarcast" / "avatar" / "avatar.png"


def _clip(work: Path) -> Path:
    """10 s of the portrait at 720p30 as raw yuv420p, zooming slowly in and out."""
    w, h = SIZES["720p"]
    raw = work / "clip.yuv"
    (ffmpeg.input(str(PORTRAIT), loop=1, t=CLIP_S)
     .filter("scale", w, h, force_original_aspect_ratio="decrease")
     .filter("pad", w, h, "(ow-iw)/2", "(oh-ih)/2")
     .filter("zoompan", z="1+0.01*sin(on/15)", d=1, s=f"{w}x{h}", fps=FPS)
     .output(str(raw), format="rawvideo", pix_fmt="yuv420p")
     .global_args("-loglevel", "error").overwrite_output().run())
    return raw


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def encoder_presets(work: Path) -> list[dict[str, Any]]:
    """CPU a frame and SSIM at each preset, with the daemon's x264 options at 720p30."""
    raw = _clip(work)
    w, h = SIZES["720p"]
    src = {"format": "rawvideo", "pix_fmt": "yuv420p", "s": f"{w}x{h}", "r": FPS}
    out: list[dict[str, Any]] = []
    for preset in PRESETS:
        video = VideoSettings(width=w, height=h, fps=FPS, preset=preset,  # type: ignore[arg-type]
                              bitrate_kbps=BITRATE_KBPS["720p"])
        encoded = work / f"{preset}.flv"
        before = _children_cpu()
        (ffmpeg.input(str(raw), **src).output(str(encoded), format="flv", **x264_options(video))
         .global_args("-loglevel", "error").overwrite_output().run())
        cpu = _children_cpu() - before
        frames = CLIP_S * FPS
        cmd = (ffmpeg.filter([ffmpeg.input(str(encoded)).video, ffmpeg.input(str(raw), **src)],
                             "ssim").output("-", format="null").compile())
        log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
        ssim = float(log.rsplit("All:", 1)[1].split()[0])
        out.append({"preset": preset, "cpu_ms_per_frame": round(1000 * cpu / frames, 2),
                    "cpu_pct_at_30fps": round(100 * cpu / CLIP_S, 1), "ssim": round(ssim, 5)})
        print(f"encoder {preset}: {out[-1]}", flush=True)
    return out


def _ready(workers: list[DaemonProc]) -> set[str]:
    """The channels some worker owns and has on air with its speech ready."""
    ready: set[str] = set()
    for w in workers:
        st = w.status() or {}
        for cid in st.get("owned", []):
            if st["channels"].get(cid, {}).get("speech_ready"):
                ready.add(cid)
    return ready


def _wait_on_air(workers: list[DaemonProc], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(_ready(workers)) < count:
        if time.monotonic() > deadline:
            states = [{k: (w.status() or {}).get(k) for k in ("owned", "channels")}
                      for w in workers]
            tails = "\n".join(w.log()[-3000:] for w in workers)
            raise RuntimeError(f"{count} channels not on air within {timeout:.0f} s: "
                               f"{states}\n{tails}")
        time.sleep(1)


def _counts(workers: list[DaemonProc], key: str) -> int:
    total = 0
    for w in workers:
        st = w.status() or {}
        total += sum(int(st["channels"][c].get(key) or 0) for c in st.get("owned", []))
    return total


def _stalled(workers: list[DaemonProc]) -> int:
    """Frames the pacers skipped after a stall of more than half a second (their log lines);
    the rest of the dropped frames did not fit the encoder's queue."""
    return sum(int(n) for w in workers
               for n in re.findall(r"pacer (\d+) frames behind; dropping them", w.log()))


def _step(work: Path, k: int, minutes: float, n_workers: int, preset: str,
          queue_frames: int | None, alive: str | None = None,
          scene: Path | None = None) -> dict[str, Any]:
    rtmp = NginxRtmp(work / f"rtmp{k}")
    rtmp.start()
    ids = [f"c{i}" for i in range(k)]
    urls = {cid: rtmp.url(f"cap-{cid}") for cid in ids}
    queues = QueueNames.unique()
    channels = write_channels(work / f"channels{k}.toml", urls)
    n_workers = min(n_workers, k)
    share = math.ceil(k / n_workers)

    def worker(i: int) -> DaemonProc:
        more = {} if queue_frames is None else {
            "AVATARCAST_OUTPUT__QUEUE_FRAMES": str(queue_frames)}
        if alive is not None:
            more["AVATARCAST_ALIVE__ENABLED"] = alive
        if scene is not None:
            more["AVATARCAST_SCENE__FILE"] = str(scene)
        return channels_worker(work, f"w{k}-{i}", queues, channels,
                               AVATARCAST_VIDEO__PRESET=preset,
                               AVATARCAST_FLEET__CAPACITY=str(share), **more)

    # The first worker alone first: its first start prepares the avatar the others share.
    workers = [worker(0)]
    clients: dict[str, PacketLog] = {}
    try:
        _wait_on_air(workers, share, 300)
        workers += [worker(i) for i in range(1, n_workers)]
        _wait_on_air(workers, k, 300)
        clients = {cid: PacketLog(url) for cid, url in urls.items()}
        time.sleep(5)
        dropped0, late0 = _counts(workers, "frames_dropped"), _counts(workers, "frames_late")
        held0 = _counts(workers, "frames_held")
        stalled0 = _stalled(workers)
        pids = {f"worker{i}": w.proc.pid for i, w in enumerate(workers)}
        for i, w in enumerate(workers):
            pids.update({f"ffmpeg{i}.{j}": p
                         for j, p in enumerate(ffmpeg_children(w.proc.pid))})
        # (a worker's with the children it reaps meanwhile: the music bed's decoders)
        cpu0 = {k_: cpu_seconds(p, k_.startswith("worker")) for k_, p in pids.items()}
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
        cpu = {k_: round(100 * (cpu_seconds(p, k_.startswith("worker")) - cpu0[k_]) / wall, 1)
               for k_, p in pids.items()}
        dropped = _counts(workers, "frames_dropped") - dropped0
        late = _counts(workers, "frames_late") - late0
        held = _counts(workers, "frames_held") - held0
        stalled = _stalled(workers) - stalled0
        wall1 = time.time()
    finally:
        for c in clients.values():
            c.close()
        for w in workers:
            w.stop()
        rtmp.stop()
        for cid in ids:
            delete_queues(queues.channel(cid))

    received = {cid: summary(c.packets, FPS, wall0, wall1) for cid, c in clients.items()}
    python = sum(v for k_, v in cpu.items() if k_.startswith("worker"))
    encoders = sum(v for k_, v in cpu.items() if k_.startswith("ffmpeg"))
    return {
        "channels": k, "workers": n_workers, "preset": preset, "seconds": round(wall, 1),
        "messages_per_channel": said, "frames_dropped": dropped, "frames_late": late,
        "frames_held": held, "frames_dropped_in_stalls": stalled, "queue_frames": queue_frames,
        "client_frames_dropped": sum(int(r.get("frames_dropped", 0)) for r in received.values()),
        "client_frames_received": sum(int(r.get("frames_received", 0))
                                      for r in received.values()),
        "cpu_worker_pct": round(python, 1), "cpu_ffmpeg_pct": round(encoders, 1),
        "cpu_per_channel_pct": round((python + encoders) / k, 1),
    }


def measure(work: Path, minutes: float, first: int, most: int, n_workers: int,
            preset: str, queue_frames: int | None = None,
            alive: str | None = None, scene: bool = False,
            video: bool = False) -> dict[str, Any]:
    ensure_rabbitmq()
    presets = encoder_presets(work)
    scene_file = None
    if scene or video:
        (work / "scene").mkdir()
        scene_file = props(work / "scene", background="video" if video else "#1d3557")
    steps = []
    for k in range(first, most + 1):
        step = _step(work, k, minutes, n_workers, preset, queue_frames, alive, scene_file)
        steps.append(step)
        print(f"{k} channel(s): {step}", flush=True)
        if step["frames_dropped"] or step["client_frames_dropped"]:
            break
    carried = max((s["channels"] for s in steps if not (
        s["frames_dropped"] or s["client_frames_dropped"])), default=0)
    return {"minutes": minutes, "workers": n_workers, "preset": preset,
            "queue_frames": queue_frames, "alive": alive or "auto", "scene": scene or video,
            "video": video,
            "encoder_presets": presets, "steps": steps,
            "channels_carried": carried}


def carried(f: dict[str, Any]) -> str:
    """The channels carried; a run whose first step (above one channel) dropped frames only
    says fewer than that, and one whose last step dropped none (it stopped at
    --max-channels) at least that."""
    steps = f.get("steps") or []
    first = steps[0]["channels"] if steps else 1
    if f["channels_carried"] == 0 and first > 1:
        return f"fewer than {first}"
    if steps and f["channels_carried"] == steps[-1]["channels"]:
        return f"at least {f['channels_carried']}"
    return str(f["channels_carried"])


def conditions(f: dict[str, Any]) -> str:
    return (f"{f['minutes']:g} min a step, {f.get('workers', 1)} worker(s), x264 "
            f"{f.get('preset', 'veryfast')}"
            + (f", output.queue_frames {f['queue_frames']}" if f.get("queue_frames") else "")
            + (f", alive.enabled {f['alive']}" if f.get("alive") else "")
            + (", a full scene: logo, lower third, ticker, clock, AI label, music, "
               + ("a looping video (1080p H.264) behind the person" if f.get("video")
                  else "background") if f.get("scene") else ""))


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [(
        f"720p30 channels with 0 dropped frames ({conditions(f)})",
        carried(f), "as many as it can", "")]
    for e in f.get("encoder_presets", []):
        out.append((f"x264 {e['preset']} alone, 720p30 at 2500 kb/s",
                    f"{e['cpu_ms_per_frame']} ms CPU a frame ({e['cpu_pct_at_30fps']}% of a "
                    f"core), SSIM {e['ssim']}", "", ""))
    for s in f["steps"]:
        out.append((f"{s['channels']} channel(s), {s['seconds']:.0f} s",
                    f"dropped {s['frames_dropped']}"
                    + (f" ({s['frames_dropped_in_stalls']} in pacer stalls)"
                       if "frames_dropped_in_stalls" in s else "")
                    + f", late {s['frames_late']} (held "
                    f"{s.get('frames_held', 'n/a')}), client dropped "
                    f"{s['client_frames_dropped']} of {s['client_frames_received']}; CPU Python "
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
           label="workers (Python)")
    ax.bar([k + 0.2 for k in ks], [s["cpu_ffmpeg_pct"] for s in steps], 0.4,
           label="FFmpeg encoders")
    ax.axhline(200, color="grey", lw=0.8)
    ax.set(xlabel="720p30 channels", ylabel="CPU, % of one core (2 cores = 200)",
           xticks=ks, title=f"avatarcast capacity, {record['stamp']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_all(minutes: float, first: int, most: int, n_workers: int,
            preset: str, queue_frames: int | None = None,
            alive: str | None = None, scene: bool = False,
            video: bool = False) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="avatarcast-capacity-") as tmp:
        return measure(Path(tmp), minutes, first, most, n_workers, preset, queue_frames, alive,
                       scene, video)
