"""Lip-sync, read off the received stream: the daemon speaks phonetically varied texts at 720p
to nginx-rtmp, a real client records what the server relays, and the face landmarker runs on
every received frame. Against what was said (the daemon's record of each aired phone and word,
on the stream's clock) and what was heard (the received audio):

* mouth opening against the audio envelope: correlation at lag 0, and the lag that fits best;
* /m b p/: the share of those sounds during which the received lips close;
* /o u w/: the share of their frames where the mouth is narrower than at rest;
* silence: the share of silent frames where the mouth is closed (no more open than at rest);
* captions (burned in): frames between a word's first sample and its caption appearing.

"Closed" and "at rest" are read against the idle picture, which for the default portrait is a
smile with the teeth showing: lips "closed" for /m b p/ nearly meet (under a quarter of the
resting gap), and a mouth closed in silence is no more open than at rest (plus a margin).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from avatarcast.avatar.track import FaceTracker
from harness.daemon import QueueNames, delete_queues, packets
from harness.services import NginxRtmp, ensure_rabbitmq
from harness.speak import (
    caption_ink,
    caption_lags,
    decode_audio,
    iter_frames,
    speak_and_record,
)
from harness.talking import atlas_avatar_env

from .session import FPS, SIZES

TEXTS = [
    "Mom bought blue boots, five pounds of fresh fruit, and a map of the moon.",
    "We whooped when Bob's puppy found the old brown boot by the pool.",
    "Peter fed the sheep while Paul played five violin pieces very softly.",
    "Would you move the blue box over by the window, please? Thank you, Maria.",
]
REST_MARGIN = 0.04  # of the mouth's width: "at rest" tolerance on the opening
RATE = 16000


class MediaPipeMeter:
    """The landmarker the daemon itself uses (MediaPipe's 468-point mesh)."""

    name = "mediapipe"

    def __init__(self) -> None:
        self._tracker = FaceTracker()

    def mouth(self, rgb: np.ndarray) -> tuple[float, float]:
        lm = self._tracker.find(np.ascontiguousarray(rgb))
        if lm is None:
            return float("nan"), float("nan")
        p = lm[:, :2]
        return float(np.linalg.norm(p[13] - p[14])), float(np.linalg.norm(p[61] - p[291]))


class DlibMeter:
    """An independent landmarker: dlib's HOG face detector and 68-point shape predictor
    (requirements-bench.txt); inner lips 62/66, mouth corners 48/54."""

    name = "dlib"

    def __init__(self) -> None:
        import importlib.util

        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or spec.origin is None:
            raise ImportError("face_recognition_models is not installed")
        data = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
        self._detect = dlib.get_frontal_face_detector()
        self._predict = dlib.shape_predictor(str(data))
        self._box: Any = None

    def mouth(self, rgb: np.ndarray) -> tuple[float, float]:
        faces = self._detect(rgb, 0)
        if faces:
            self._box = max(faces, key=lambda r: r.area())
        if self._box is None:
            return float("nan"), float("nan")
        s = self._predict(rgb, self._box)
        p = np.array([[s.part(i).x, s.part(i).y] for i in (62, 66, 48, 54)], float)
        return float(np.linalg.norm(p[0] - p[1])), float(np.linalg.norm(p[2] - p[3]))


def meters() -> list[Any]:
    out: list[Any] = [MediaPipeMeter()]
    try:
        out.append(DlibMeter())
    except ImportError as exc:
        print(f"dlib meter unavailable ({exc}); `make lipsync` installs it")
    return out


def _envelope(audio: np.ndarray, audio_start: float, frame_pts: np.ndarray) -> np.ndarray:
    x = audio.astype(np.float32) / 32768.0
    out = np.zeros(len(frame_pts))
    for k, t in enumerate(frame_pts):
        a = round(float(t - audio_start) * RATE)
        win = x[max(0, a) : max(0, a + RATE // FPS)]
        out[k] = float(np.sqrt(np.mean(win**2))) if len(win) else 0.0
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10 or a[ok].std() == 0 or b[ok].std() == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _phone_at(phones: list[list[Any]], t: float) -> str | None:
    for start, end, vis in phones:
        if start <= t < end:
            return str(vis)
    return None


def measure(recording: Path, aired: list[dict[str, Any]], width: int,
            height: int) -> dict[str, Any]:
    tools = meters()
    frames = iter_frames(recording, width, height, "rgb24", 3)
    series = np.array([[m.mouth(rgb) for m in tools] for rgb in frames])  # (n, meters, 2)
    video = packets(recording, "v")[:, 0]
    audio_pts = packets(recording, "a")[:, 0]
    n = min(len(video), len(series))
    series, video = series[:n], video[:n]
    first = min(e["frame"] for e in aired)
    last = max(round(e["words"][-1][1] * FPS) if e["words"] else e["frame"] for e in aired)
    span = slice(max(0, first - 15), min(n, last + 15))
    env = _envelope(decode_audio(recording, RATE), float(audio_pts[0]), video)
    phones = [p for e in aired for p in e["phones"]]
    labels = [_phone_at(phones, (k + 0.5) / FPS) for k in range(n)]
    quiet = env < 0.02 * float(env[span].max())
    silent = [k for k in range(span.start, span.stop)
              if quiet[max(0, k - 2) : k + 3].all()]  # silence heard, 3 frames each side
    out: dict[str, Any] = {"frames": n, "silent_frames": len(silent)}
    for i, meter in enumerate(tools):
        out[meter.name] = _figures(series[:, i, 0], series[:, i, 1], first, span, phones,
                                   labels, silent, env)
    return out


def _figures(opening: np.ndarray, mwidth: np.ndarray, first: int, span: slice,
             phones: list[list[Any]], labels: list[str | None], silent: list[int],
             env: np.ndarray) -> dict[str, Any]:
    idle = np.r_[max(0, first - 25) : first - 3]
    w0 = float(np.nanmedian(mwidth[idle]))
    norm_open, norm_width = opening / w0, mwidth / w0
    rest = float(np.nanmedian(norm_open[idle]))
    closed_below = max(rest / 4, 0.02)
    n = len(opening)
    closures = [p for p in phones if p[2] == "PP"]
    # During the sound, give or take a frame (lips may lead or lag the sound by that much).
    closed_ok = sum(
        1 for start, end, _ in closures
        if any(norm_open[k] <= closed_below
               for k in range(max(0, int(start * FPS) - 1), min(n, int(np.ceil(end * FPS)) + 1))))
    rounded = [k for k, v in enumerate(labels) if v in ("O", "U")]
    round_ok = sum(1 for k in rounded if norm_width[k] < 1.0)
    # Closed in silence: no more open than at rest (lips may already close for a coming /m/).
    silent_ok = sum(1 for k in silent if norm_open[k] <= rest + REST_MARGIN)
    lags = {lag: _corr(np.roll(norm_open, -lag)[span], env[span]) for lag in range(-5, 6)}
    best = max(lags, key=lambda k: -1 if np.isnan(lags[k]) else lags[k])
    return {
        "faces_found": int(np.isfinite(opening).sum()),
        "rest_opening": round(rest, 3), "closed_below": round(closed_below, 3),
        "envelope_corr_lag0": round(lags[0], 3),
        "envelope_best_lag_frames": best, "envelope_corr_best": round(lags[best], 3),
        "mbp_closed": {"n": len(closures), "share": round(closed_ok / max(1, len(closures)), 3)},
        "ouw_rounded": {"n": len(rounded), "share": round(round_ok / max(1, len(rounded)), 3)},
        "silent_closed": {"n": len(silent), "share": round(silent_ok / max(1, len(silent)), 3)},
        "opening_speaking_median": round(float(np.nanmedian(norm_open[span])), 3),
        "opening_speaking_max": round(float(np.nanmax(norm_open[span])), 3),
        "series": {
            "t": [round(k / FPS, 3) for k in range(span.start, span.stop)],
            "opening": _rounded(norm_open[span]), "width": _rounded(norm_width[span]),
            "envelope": _rounded(env[span] / max(1e-9, float(env[span].max()))),
            "phones": [p for p in phones if p[2] in ("PP", "O", "U")],
        },
    }


def _rounded(x: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 3) for v in x]


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {f"{p}, {m}": v[m] for p, v in record["figures"].items()
            for m in ("dlib", "mediapipe") if m in v}
    fig, axes = plt.subplots(2 * len(runs), 1, figsize=(16, 5 * len(runs)), squeeze=False)
    fig.suptitle(f"avatarcast lip-sync from the received stream, {record['stamp']}, commit "
                 f"{record['versions']['commit']}")
    for i, (name, v) in enumerate(runs.items()):
        s = v["series"]
        ax = axes[2 * i][0]
        ax.plot(s["t"], s["opening"], label="mouth opening (received, / rest width)")
        ax.plot(s["t"], s["envelope"], alpha=0.6, label="audio envelope (received)")
        ax.axhline(v["closed_below"], color="k", ls=":", label="closed below")
        for start, end, vis in s["phones"]:
            if vis == "PP":
                ax.axvspan(start, end, color="tab:red", alpha=0.25)
        ax.set(title=f"{name}: opening vs sound; red: /m b p/", xlabel="stream s")
        ax.legend(loc="upper right")
        ax = axes[2 * i + 1][0]
        ax.plot(s["t"], s["width"], color="tab:green", label="mouth width / rest width")
        ax.axhline(1.0, color="k", ls=":")
        for start, end, vis in s["phones"]:
            if vis in ("O", "U"):
                ax.axvspan(start, end, color="tab:blue", alpha=0.2)
        ax.set(title=f"{name}: width; blue: /o u w/", xlabel="stream s")
        ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def caption_delays(recording: Path, aired: list[dict[str, Any]], width: int,
                   height: int) -> dict[str, Any]:
    """Frames from each word's first sample to its caption on the received picture."""
    ink = caption_ink(recording, width, height)
    _, delays = caption_lags(ink, [w[0] for e in aired for w in e["words"]], FPS)
    return {"n": len(delays), "within_one_frame": round(
        sum(abs(d) <= 1 for d in delays) / max(1, len(delays)), 3),
        "median_frames": statistics.median(delays) if delays else None,
        "max_frames": max(delays, key=abs) if delays else None, "delays": delays}


def run(work: Path, size: str = "720p", provider: str = "piper",
        atlas: bool = False) -> dict[str, Any]:
    """With `atlas`, the portrait has a mouth atlas from a talking reference made here."""
    ensure_rabbitmq()
    extra = atlas_avatar_env(work, fps=FPS) if atlas else {}
    width, height = SIZES[size]
    server = NginxRtmp(work / "nginx")
    queues = QueueNames.unique()
    server.start()
    transcript = work / "aired.jsonl"
    try:
        _, _, recording = speak_and_record(work, queues, server, {
            "AVATARCAST_SPEECH__PROVIDERS": json.dumps([provider]),
            "AVATARCAST_CAPTIONS__BURN_IN": "true",
            "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript), **extra,
        }, TEXTS, animator="lite", width=width, height=height, fps=FPS)
    finally:
        server.stop()
        delete_queues(queues)
    aired = [json.loads(x) for x in transcript.read_text().splitlines()]
    out = measure(recording, aired, width, height)
    out["captions"] = caption_delays(recording, aired, width, height)
    out["size"], out["provider"], out["texts"] = size, provider, len(TEXTS)
    out["mouth"] = "atlas" if atlas else "still"
    return out


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for provider, run in f.items():
        for meter in ("dlib", "mediapipe"):
            v = run.get(meter)
            if v is None:
                continue
            name = f"{provider}, {meter}"
            m, s, r = v["mbp_closed"], v["silent_closed"], v["ouw_rounded"]
            out.append((f"{name}: mouth vs audio envelope", f"r = {v['envelope_corr_lag0']} at "
                        f"lag 0, best {v['envelope_corr_best']} at "
                        f"{v['envelope_best_lag_frames']} frames", "", ""))
            if m["n"]:
                out.append((f"{name}: /m b p/ with closed lips", f"{m['share']:.0%} of {m['n']}",
                            ">= 90%", "met" if m["share"] >= 0.9 else "MISSED"))
            if r["n"]:
                out.append((f"{name}: /o u w/ frames rounded", f"{r['share']:.0%} of {r['n']}",
                            "", ""))
            out.append((f"{name}: silent frames closed", f"{s['share']:.0%} of {s['n']}",
                        "100%", "met" if s["share"] >= 1.0 else "MISSED"))
        c = run["captions"]
        out.append((f"{provider}: caption on its word's frame", f"{c['within_one_frame']:.0%} "
                    f"within one frame of {c['n']} (median {c['median_frames']}, worst "
                    f"{c['max_frames']})", "within one frame",
                    "met" if c["within_one_frame"] >= 1.0 else "MISSED"))
    return out
