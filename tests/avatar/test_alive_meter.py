"""The alive meter (harness/alive_meter.py, alive_figures.py) measures what it claims, on
sequences made here from the bundled portrait with known blinks, head motion and breathing;
each frame is JPEG-compressed at its own quality, so no two frames are identical (as with a
stream's frames)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from avatarcast.avatar.track import FaceTracker
from avatarcast.settings import DEFAULT_IDLE_SOURCE
from harness.alive_figures import (
    breathing,
    drift,
    find_blinks,
    mask_of,
    relative_openness,
    summarize,
)
from harness.alive_landmarks import MediaPipeFace
from harness.alive_meter import AliveMeter

Image = npt.NDArray[np.uint8]
# Each eye's upper and lower lid, corner to corner (MediaPipe mesh).
LIDS = (((33, 246, 161, 160, 159, 158, 157, 173, 133), (33, 7, 163, 144, 145, 153, 154, 155, 133)),
        ((362, 398, 384, 385, 386, 387, 388, 466, 263),
         (362, 382, 381, 380, 374, 373, 390, 249, 263)))


def portrait(side: int) -> tuple[Image, npt.NDArray[np.float64]]:
    """The portrait at side x side (720: the face about 140 px high, as the daemon's 720p
    shows it) and its mesh."""
    bgr = np.asarray(cv2.imread(str(DEFAULT_IDLE_SOURCE)), np.uint8)
    small = cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), np.uint8)
    lm = FaceTracker().find(rgb)
    assert lm is not None
    return rgb, lm[:, :2].astype(np.float64)


def shifted(rgb: Image, dy: float) -> Image:
    m = np.array([[1, 0, 0], [0, 1, dy]], np.float32)
    return np.asarray(cv2.warpAffine(rgb, m, rgb.shape[1::-1],
                                     borderMode=cv2.BORDER_REPLICATE), np.uint8)


def lids_down(rgb: Image, lm: npt.NDArray[np.float64], amount: float) -> Image:
    """The upper lids lowered by `amount` of the eyes' opening (1: shut): the skin above each
    eye moved down over it, and a dark lash line where the lid's edge now is."""
    out: npt.NDArray[np.float32] = rgb.astype(np.float32)
    h, w = rgb.shape[:2]
    for upper, lower in LIDS:
        up, low = lm[list(upper)], lm[list(lower)]
        width = float(np.linalg.norm(up[0] - up[-1]))
        drop = amount * (float(np.max(low[:, 1] - up[:, 1])) + 0.15 * width)
        edge = up + amount * (low - up) + [0, amount * 0.075 * width]
        poly = np.r_[up - [0, 0.045 * width], edge[::-1]]
        sharp = np.zeros((h, w), np.float32)
        cv2.fillPoly(sharp, [np.round(poly * 4).astype(np.int32)], 1.0, cv2.LINE_AA, 2)
        mask = np.asarray(cv2.GaussianBlur(sharp, (0, 0), max(0.5, width / 40)),
                          np.float32)[..., None]
        lid = shifted(rgb, drop).astype(np.float32)
        out = out * (1 - mask) + lid * mask
        if amount > 0.5:
            cv2.polylines(out, [np.round(edge * 4).astype(np.int32)], False, (45.0, 32.0, 28.0),
                          max(1, round(width / 12)), cv2.LINE_AA, 2)
    return np.asarray(np.clip(out + 0.5, 0, 255), np.uint8)


def received(rgb: Image, k: int) -> Image:
    ok, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 80 + (7 * k) % 16])
    assert ok
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_UNCHANGED), np.uint8)


def warped(rgb: Image, m: npt.NDArray[np.float64]) -> Image:
    return np.asarray(cv2.warpAffine(rgb, m, rgb.shape[1::-1],
                                     borderMode=cv2.BORDER_REPLICATE), np.uint8)


@pytest.fixture(scope="module")
def face() -> MediaPipeFace:
    return MediaPipeFace()


def measure(face: MediaPipeFace, n: int, frame: Callable[[int], Image], fps: float = 30,
            windows: dict[str, list[tuple[int, int]]] | None = None
            ) -> tuple[AliveMeter, dict[str, npt.NDArray[np.float64]], dict[str, object]]:
    meter = AliveMeter([face], fps)
    for k in range(n):
        meter.add(received(frame(k), k))
    series = meter.series()
    return meter, series, summarize(series, meter.info(), windows)


def test_a_still_face_neither_blinks_nor_moves(face: MediaPipeFace) -> None:
    rgb, _ = portrait(720)
    grey = np.full_like(rgb, 128)
    faceless = (20, 21, 22)
    _, series, figures = measure(face, 45, lambda k: grey if k in faceless else rgb)
    assert figures["faces_not_found"] == {"mediapipe": 3}
    blinks = figures["blinks"]["mediapipe"]["all"]  # type: ignore[index]
    assert blinks["count"] == 0 and blinks["partial_closures"] == 0
    assert blinks["open_sd"] < 0.05, "the openness of a still eye should barely vary"
    head = figures["head"]["all"]  # type: ignore[index]
    assert head["x_px"]["sd"] < 0.05 and head["y_px"]["sd"] < 0.05
    assert head["roll_deg"]["sd"] < 0.02
    assert head["step_px"]["max"] < 0.15 and head["step_deg"]["max"] < 0.05
    assert np.nanmax(np.abs(series["body_y"])) < 0.1


def test_closed_eyes_are_counted_as_blinks_of_their_length(face: MediaPipeFace) -> None:
    rgb, lm = portrait(720)
    # frame -> how far the lids are down; three shut blinks (two of them a double blink: 3
    # frames apart), one with a slower opening, and a half closure that is no blink.
    lids = {10: 1.0, 11: 1.0, 12: 1.0,
            30: 0.75, 31: 1.0, 32: 1.0, 33: 0.75, 34: 0.75,
            38: 1.0, 39: 1.0,
            55: 0.5, 56: 0.5}
    frames = {a: lids_down(rgb, lm, a) for a in set(lids.values())}
    _, series, figures = measure(face, 70, lambda k: frames[lids[k]] if k in lids else rgb,
                                 windows={"early": [(0, 25)], "late": [(25, 70)]})
    r = relative_openness(series["mediapipe.open_l"], series["mediapipe.open_r"], 30)
    blinks, _ = find_blinks(r)
    assert [b.start for b in blinks] == [10, 30, 38]
    # Every frame with its lids 3/4 down or more is below 80% of open, every open one above.
    assert [b.frames for b in blinks] == [3, 5, 2]
    assert blinks[1].bottom[0] - blinks[1].start == 1, "closing: the one 3/4 frame"
    assert blinks[1].end - blinks[1].bottom[1] == 2, "opening: the two 3/4 frames"
    f = figures["blinks"]["mediapipe"]  # type: ignore[index]
    assert f["early"]["count"] == 1 and f["late"]["count"] == 2
    assert f["all"]["closed_share"] == 1.0
    assert f["all"]["doubles"] == 1
    assert f["all"]["duration_ms"]["median"] == pytest.approx(100, abs=0.1)
    assert f["all"]["per_minute"] == pytest.approx(3 / (70 / 30 / 60), rel=0.01)


def test_head_rotation_and_translation_are_recovered(face: MediaPipeFace) -> None:
    rgb, lm = portrait(480)
    n, fps = 60, 30
    pivot = (float(lm[:, 0].mean()), float(lm[152, 1] + 0.6 * np.ptp(lm[:, 1])))  # the neck
    t = np.arange(n) / fps
    angle = 1.5 * np.sin(2 * np.pi * t / 2.0)  # degrees, counter-clockwise on screen
    shift = np.stack([4 * np.sin(2 * np.pi * t / 1.5), 3 * np.sin(2 * np.pi * t / 1.2)], 1)

    def warp(k: int) -> npt.NDArray[np.float64]:
        m = cv2.getRotationMatrix2D(pivot, float(angle[k]), 1.0)
        m[:, 2] += shift[k]
        return np.asarray(m, np.float64)

    meter, series, figures = measure(face, n, lambda k: warped(rgb, warp(k)))
    assert meter.anchor is not None
    truth = np.array([warp(k)[:, :2] @ meter.anchor + warp(k)[:, 2] - meter.anchor
                      for k in range(n)])
    assert np.abs(series["head_x"] - truth[:, 0]).max() < 0.15
    assert np.abs(series["head_y"] - truth[:, 1]).max() < 0.15
    assert np.abs(series["head_roll"] + angle).max() < 0.08  # roll: clockwise positive
    head = figures["head"]["all"]  # type: ignore[index]
    assert head["x_px"]["sd"] == pytest.approx(np.std(truth[:, 0]), rel=0.05)
    assert head["roll_deg"]["sd"] == pytest.approx(np.std(angle), rel=0.05)
    p5, p95 = np.percentile(angle, [5, 95])
    assert head["roll_deg"]["range"] == pytest.approx(p95 - p5, abs=0.1)
    steps = np.hypot(*np.diff(truth, axis=0).T)
    assert head["step_px"]["max"] == pytest.approx(steps.max(), abs=0.05)
    assert head["step_deg"]["max"] == pytest.approx(np.abs(np.diff(angle)).max(), abs=0.02)
    # The landmarks see the same motion, less precisely.
    assert np.corrcoef(series["mediapipe.pose_roll"], -angle)[0, 1] > 0.9
    assert np.corrcoef(series["mediapipe.pose_x"], truth[:, 0])[0, 1] > 0.9


def test_breathing_rate_and_amplitude_are_recovered(face: MediaPipeFace) -> None:
    rgb, lm = portrait(480)
    fps, n, rate_cpm, amp = 5, 120, 17.0, 2.5  # 24 s, a breath every 3.5 s, 5 px rise
    below = int(lm[152, 1] + 0.1 * np.ptp(lm[:, 1]))  # the chin stays where it is
    jitter = np.random.default_rng(7).normal(0, 0.4, n)  # a fidget, frame to frame

    def frame(k: int) -> Image:
        dy = amp * np.sin(2 * np.pi * rate_cpm / 60 * k / fps) + jitter[k]
        out = rgb.copy()
        out[below:] = shifted(rgb, dy)[below:]
        return out

    _, _, figures = measure(face, n, frame, fps=fps)
    b = figures["breathing"]["all"]  # type: ignore[index]
    assert b["rate_cpm"] == pytest.approx(rate_cpm, abs=0.5)
    assert b["cycles_per_minute"] == pytest.approx(rate_cpm, abs=1)
    assert b["sine_p2p_px"] == pytest.approx(2 * amp, rel=0.2)
    head = figures["head"]["all"]  # type: ignore[index]
    assert head["y_px"]["sd"] < 0.05, "the head stayed still"


def test_breathing_is_counted_through_noise_drift_and_uneven_breaths() -> None:
    fps, n = 30, 90 * 30
    rng = np.random.default_rng(0)
    # 15 a minute on average, each breath 20% longer or shorter than the last at random.
    per_frame = np.repeat(rng.uniform(0.8, 1.2, n // 60 + 1), 60)[:n] * 15 / 60 / fps
    phase = 2 * np.pi * np.cumsum(per_frame)
    t = np.arange(n) / fps
    sway = 5.0 * np.sin(2 * np.pi * t / 45)  # the head's slow sway, shared by the shoulders
    y = 2.0 * np.sin(phase) + sway + rng.normal(0, 0.5, n)
    b = breathing(y, mask_of(n, [(0, n)]), fps)
    cycles = phase[-1] / (2 * np.pi) / (n / fps / 60)
    assert b["rate_cpm"] == pytest.approx(cycles, abs=1.5)
    assert b["cycles_per_minute"] == pytest.approx(cycles, abs=1)
    assert b["sine_p2p_px"] == pytest.approx(4.0, rel=0.3)
    # A still body: the encoder's ripple has no rate.
    still = breathing(rng.normal(0, 0.02, n), mask_of(n, [(0, n)]), fps)
    assert still["rate_cpm"] is None and still["cycles_per_minute"] is None


def test_drift_is_the_last_minute_of_idle_against_the_first() -> None:
    fps, idle = 10, 5 * 60 * 10  # five minutes of idle, then a minute of speech
    n = idle + 600
    x = np.r_[np.linspace(0, 2, idle), np.full(600, 9.0)]  # 2 px in idle; speech moves more
    still = np.zeros(n)
    d = drift(x, still, still, mask_of(n, [(0, idle)]), fps)
    assert d["window_s"] == 60
    assert d["x_px"] == pytest.approx(2 * 4 / 5, abs=0.01)  # minute 4.5 against minute 0.5
    assert d["y_px"] == 0 and d["roll_deg"] == 0


def test_dlib_sees_shut_eyes() -> None:
    pytest.importorskip("dlib")
    from harness.alive_landmarks import DlibFace

    rgb, lm = portrait(720)
    dlib = DlibFace()  # the second and third face are looked for near the first one
    seen = [dlib.find(x) for x in (rgb, lids_down(rgb, lm, 1.0), received(rgb, 1))]
    assert all(s is not None for s in seen)
    (lo, ro), (ls, rs), (la, ra) = (s.openness for s in seen if s is not None)
    assert max(ls / lo, rs / ro) < 0.6
    assert min(la / lo, ra / ro) > 0.85
