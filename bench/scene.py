"""What the scene costs on the frame path (issue 30): the compositor on the pacer thread, per
frame, at 720p and 1080p, with every layer on (logo, AI label, lower third sliding in, ticker,
clock) over the bundled portrait; beside it the frame copy it starts with, and the AI label
alone (the default). The sound's share: the music bed mixed and ducked under a tick's audio,
the programme's loudness meter on it, and a sentence of speech brought to its loudness.
A looping video behind the person (bench/scene_video.py): its blend on the pacer, the
mask moved with the head, and FFmpeg's decoding. Medians and p95 over 900 frames (the video:
300 ticks paced at 30 fps), and the share of a 30 fps frame's 33.3 ms they take.

  python -m bench scene      (about a minute)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from avatarcast.avatar import __file__ as avatar_pkg
from avatarcast.onair.meter import ProgrammeMeter
from avatarcast.onair.segment import Segment
from avatarcast.onair.tick import TickOutput
from avatarcast.playout.scene.compose import Compositor
from avatarcast.playout.scene.mix import MusicMix
from avatarcast.playout.scene.spec import AiLabel, Clock, Logo, LowerThird, Music, Scene, Ticker
from avatarcast.speech.level import SpeechLevel

from . import scene_video

FRAMES = 900
FPS = 30
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def _frame(width: int, height: int) -> np.ndarray:
    img = cv2.imread(str(Path(avatar_pkg).parent / "avatar.png"))
    return np.asarray(cv2.cvtColor(cv2.resize(img, (width, height)), cv2.COLOR_BGR2YUV_I420))


def _time(fn: Any, frame: np.ndarray) -> dict[str, float]:
    spent = []
    for n in range(FRAMES):
        t = time.perf_counter()
        fn(frame, n)
        spent.append(time.perf_counter() - t)
    s = sorted(spent)
    return {"median_ms": round(statistics.median(s) * 1000, 3),
            "p95_ms": round(s[int(0.95 * (len(s) - 1))] * 1000, 3)}


def measure() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="avatarcast-scene-") as tmp:
        video = scene_video.clip(Path(tmp) / "backdrop.mp4")
        portrait = cv2.cvtColor(cv2.imread(str(Path(avatar_pkg).parent / "avatar.png")),
                                cv2.COLOR_BGR2RGB)
        logo = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
        ImageDraw.Draw(logo).ellipse((8, 8, 248, 248), fill=(220, 60, 40, 255))
        logo.save(Path(tmp) / "logo.png")
        full = Scene(logo=Logo(path=Path("logo.png")), ai_label=AiLabel(),
                     lower_third=LowerThird(title="Avatar Live",
                                            subtitle="Your questions, answered"),
                     ticker=Ticker(text="Send your questions in the chat - new episodes "
                                        "every night - avatarcast"),
                     clock=Clock(timezone="Europe/Lisbon"))
        for size, (w, h) in SIZES.items():
            frame = _frame(w, h)
            every = Compositor(full, Path(tmp), w, h, FPS)
            label = Compositor(Scene(ai_label=AiLabel()), Path(tmp), w, h, FPS)

            def composed(c: Compositor) -> Any:
                def run(f: np.ndarray, n: int) -> None:
                    g = f.copy()
                    c.draw(g, n)
                return run

            out[size] = {"copy": _time(lambda f, n: f.copy(), frame),
                         "label": _time(composed(label), frame),
                         "all": _time(composed(every), frame),
                         "video": scene_video.measure(portrait, w, h, video)}
    out["sound"] = _sound()
    return out


class _Bed:
    """A bed that hands over noise at once (the feeder's work is on its own thread)."""

    now_playing, problem, underruns = "noise", None, 0

    def __init__(self) -> None:
        self._noise = (0.05 * np.random.default_rng(0).standard_normal(48_000)).astype(
            np.float32)

    def read(self, n: int) -> np.ndarray:
        return self._noise[:n]


def _sound() -> dict[str, Any]:
    spf = 48_000 // FPS
    mix = MusicMix(_Bed(), Music(folder=Path(".")), FPS, 48_000)  # type: ignore[arg-type]
    speech = np.round(3000 * np.sin(np.arange(spf) / 9)).astype(np.int16)
    seg = Segment("s", 0)

    def mixed(f: np.ndarray, n: int) -> None:  # speech on air half the time: ducking moves
        mix(n, TickOutput(f, speech, segment=seg if (n // 90) % 2 else None))

    meter = ProgrammeMeter(48_000)
    level = SpeechLevel(-18.0, 48_000)
    sentence = np.round(8000 * np.random.default_rng(1).standard_normal(48_000 * 3)).astype(
        np.int16)
    spent = []
    for _ in range(30):
        t = time.perf_counter()
        level.apply("v", sentence)
        spent.append(time.perf_counter() - t)
    return {"mix": _time(mixed, np.zeros((4, 4), np.uint8)),
            "meter": _time(lambda f, n: meter.tap(n, f, speech), np.zeros((4, 4), np.uint8)),
            "level_per_s_ms": round(statistics.median(spent) * 1000 / 3, 3)}


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for size in SIZES:
        for key, what in (("copy", "the frame copy alone"), ("label", "the AI label (default)"),
                          ("all", "every layer: logo, label, lower third, ticker, clock")):
            x = f[size][key]
            share = round(100 * x["median_ms"] / (1000 / FPS), 1)
            out.append((f"{size}: {what}", f"median {x['median_ms']} ms, p95 {x['p95_ms']} ms",
                        "cheap beside 33.3 ms a frame", f"{share}% of a frame"))
    for size in SIZES:
        v = f[size].get("video")
        if v is None:
            continue
        b, m, mm = v["behind"], v["motion"], v["motion_with_mask"]
        out.append((f"{size}: a looping video put behind the person (pacer)",
                    f"median {b['median_ms']} ms, p95 {b['p95_ms']} ms; {v['late']} of "
                    f"{scene_video.TICKS} ticks found no new frame",
                    "cheap beside 33.3 ms a frame",
                    f"{round(100 * b['median_ms'] / (1000 / FPS), 1)}% of a frame"))
        out.append((f"{size}: the motion moving the mask too",
                    f"median {mm['median_ms']} ms against {m['median_ms']} ms without",
                    "the mask follows the head", f"+{round(mm['median_ms'] - m['median_ms'], 2)}"
                    " ms"))
        out.append((f"{size}: FFmpeg decoding the video (a 1080p H.264 clip)",
                    f"{v['decoder_cpu_pct']}% of a core", "its own process", "n/a"))
    sound = f["sound"]
    for key, what in (("mix", "the music bed mixed and ducked under a tick"),
                      ("meter", "the programme's loudness meter, a tick")):
        x = sound[key]
        share = round(100 * x["median_ms"] / (1000 / FPS), 1)
        out.append((what, f"median {x['median_ms']} ms, p95 {x['p95_ms']} ms",
                    "cheap beside 33.3 ms a frame", f"{share}% of a frame"))
    out.append(("speech brought to its loudness (off the pacer)",
                f"{sound['level_per_s_ms']} ms a second of speech", "cheap", "n/a"))
    return out


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = ["copy", "label", "all"]
    for i, size in enumerate(SIZES):
        ax.bar([k + 0.35 * i for k in range(3)], [f[size][k]["median_ms"] for k in keys],
               width=0.35, label=size)
    ax.set_xticks([k + 0.17 for k in range(3)], ["copy", "AI label", "every layer"])
    ax.set(ylabel="ms per frame (median)", title=f"avatarcast scene, {record['stamp']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
