"""The alive meter's per-frame measures (harness/alive_meter.py) summed up: blinks, head motion,
drift, breathing, brows and gaze, each for named windows of frames (idle, speech, thinking...).

Blinks are read from each landmarker's eye openness relative to its running open level (the
median of the frames around, so slow changes such as a lowered gaze are not blinks):

* a blink is a run of frames below OPEN_BELOW of open that reaches below BLINK_BELOW; its
  duration is the run's frames; a run that never gets that low is a partial closure;
* it "closed" when it reached below CLOSED_BELOW: no landmarker reads a shut eye as 0 (the
  bundled portrait with its lids painted shut reads 0.28-0.31 of open with MediaPipe's iris
  model, 0.3-0.4 with dlib at 720p; dlib at 480p misses some shut eyes altogether);
* lids lowered by two thirds or more make a blink (MediaPipe: 0.6 of the way down reads
  0.50-0.55, 0.7 reads 0.47-0.52); half-lowered lids read about 0.8, a partial closure at most;
* a glance down lowers the lids too: one shorter than the running level's window may read
  as a partial closure;
* closing is the run's frames before its bottom (the frames within a quarter of the way from
  its lowest to OPEN_BELOW), opening the frames after; all three are whole frames (33 ms at
  30 fps): a 70 ms closing reads as 2 or 3 frames;
* a double blink starts within DOUBLE_GAP_S of the previous one's end.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Series = npt.NDArray[np.float64]
Windows = dict[str, list[tuple[int, int]]]

OPEN_BELOW, BLINK_BELOW, CLOSED_BELOW = 0.8, 0.5, 0.4
LEVEL_S = 5.0  # the running open level: the median over this many seconds either side
DOUBLE_GAP_S = 0.5
DRIFT_S = 60.0  # drift: the first minute's mean position against the last minute's (of idle)
BREATH_CPM = (6.0, 40.0)  # breathing is looked for between these rates (cycles a minute)
BREATH_MIN_S = 20.0
BREATH_MIN_PX = 0.3  # below this (p95-p5) nothing rises and falls: a rate would be noise's
TREND_S = 15.0  # slower than this is sway or drift, not breathing


@dataclass(frozen=True)
class Blink:
    start: int  # first frame below OPEN_BELOW
    end: int  # last frame below it
    bottom: tuple[int, int]  # first and last frame near the lowest
    depth: float  # the lowest relative openness

    @property
    def frames(self) -> int:
        return self.end - self.start + 1


def mask_of(n: int, spans: list[tuple[int, int]]) -> npt.NDArray[np.bool_]:
    out = np.zeros(n, bool)
    for a, b in spans:
        out[max(0, a) : max(0, min(n, b))] = True
    return out


def _r(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 3)


def _nan_smooth(x: Series, width: int) -> Series:
    """A centred moving mean over `width` frames that skips NaNs."""
    ok = np.isfinite(x)
    kernel = np.ones(max(1, width))
    num = np.convolve(np.where(ok, x, 0.0), kernel, "same")
    den = np.convolve(ok.astype(float), kernel, "same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def open_level(o: Series, fps: float) -> Series:
    """The running open level: the median of the frames within LEVEL_S either side, taken every
    half second and interpolated (a blink is far too short to move it)."""
    n, half, step = len(o), int(LEVEL_S * fps), max(1, int(fps // 2))
    centres = np.arange(0, n, step)
    vals = np.array([np.nanmedian(w) if np.isfinite(w := o[max(0, c - half) : c + half + 1]).any()
                     else np.nan for c in centres])
    ok = np.isfinite(vals)
    if not ok.any():
        return np.full(n, np.nan)
    return np.asarray(np.interp(np.arange(n), centres[ok], vals[ok]), np.float64)


def relative_openness(left: Series, right: Series, fps: float) -> Series:
    """Both eyes' openness over their own open level, averaged (people blink both eyes)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (left / open_level(left, fps) + right / open_level(right, fps)) / 2
    return np.asarray(out, np.float64)


def find_blinks(r: Series) -> tuple[list[Blink], list[int]]:
    """(the blinks, and the first frames of partial closures) in relative openness; a frame
    with no face neither starts nor continues one."""
    below = np.isfinite(r) & (r < OPEN_BELOW)
    edges = np.flatnonzero(np.diff(np.r_[0, below.astype(int), 0]))
    blinks: list[Blink] = []
    partial: list[int] = []
    for a, b in zip(edges[::2], edges[1::2] - 1, strict=True):
        run = r[a : b + 1]
        depth = float(run.min())
        if depth >= BLINK_BELOW:
            partial.append(int(a))
            continue
        near = np.flatnonzero(run <= depth + 0.25 * (OPEN_BELOW - depth))
        blinks.append(Blink(int(a), int(b), (int(a + near[0]), int(a + near[-1])), depth))
    return blinks, partial


def _stats(x: list[float] | Series) -> dict[str, float | None]:
    a = np.asarray(x, float)
    if not len(a):
        return {"median": None, "p95": None}
    return {"median": _r(float(np.median(a))), "p95": _r(float(np.percentile(a, 95)))}


def _intervals(starts: list[int], fps: float) -> dict[str, Any]:
    iv = np.diff(np.asarray(starts, float)) / fps
    if len(iv) < 2:
        return {"n": len(iv), "values_s": [round(float(v), 2) for v in iv]}
    mean, sd = float(iv.mean()), float(iv.std())
    skew = float(((iv - mean) ** 3).mean() / sd**3) if sd > 0 else 0.0
    return {"n": len(iv), "median_s": _r(float(np.median(iv))), "mean_s": _r(mean),
            "cv": _r(sd / mean), "skew": _r(skew), "min_s": _r(float(iv.min())),
            "max_s": _r(float(iv.max())), "values_s": [round(float(v), 2) for v in iv]}


def blink_figures(r: Series, blinks: list[Blink], partial: list[int],
                  span: npt.NDArray[np.bool_], fps: float) -> dict[str, Any]:
    """Blinks starting in the frames of `span` (a mask)."""
    ms = 1000 / fps
    inside = [b for b in blinks if span[b.start]]
    seen_min = float((span & np.isfinite(r)).sum()) / fps / 60
    doubles = sum(1 for p, q in itertools.pairwise(inside)
                  if (q.start - p.end - 1) / fps < DOUBLE_GAP_S)
    # The level's noise: the spread of openness away from any closure (3 frames' margin).
    calm = span & np.isfinite(r)
    for b in blinks:
        calm[max(0, b.start - 3) : b.end + 4] = False
    return {
        "count": len(inside), "minutes": _r(seen_min),
        "per_minute": _r(len(inside) / seen_min) if seen_min > 0 else None,
        "duration_ms": _stats([b.frames * ms for b in inside]),
        "closing_ms": _stats([(b.bottom[0] - b.start) * ms for b in inside]),
        "opening_ms": _stats([(b.end - b.bottom[1]) * ms for b in inside]),
        "closed_share": _r(sum(b.depth < CLOSED_BELOW for b in inside) / len(inside))
        if inside else None,
        "depth": _stats([b.depth for b in inside]),
        "partial_closures": sum(1 for a in partial if span[a]),
        "doubles": doubles,
        "intervals": _intervals([b.start for b in inside], fps),
        "open_sd": _r(float(np.std(r[calm]))) if calm.any() else None,
    }


def motion_figures(x: Series, y: Series, roll: Series, span: npt.NDArray[np.bool_]
                   ) -> dict[str, Any]:
    """Amplitude (SD, p95-p5 range) of the head's x, y (px) and roll (deg) in `span`, and its
    largest and 99th-percentile step between consecutive frames."""
    ok = span & np.isfinite(x) & np.isfinite(y) & np.isfinite(roll)
    if ok.sum() < 3:
        return {"frames": int(ok.sum())}
    pair = ok[1:] & ok[:-1]
    step_px = np.hypot(np.diff(x), np.diff(y))[pair]
    step_deg = np.abs(np.diff(roll))[pair]
    out: dict[str, Any] = {"frames": int(ok.sum())}
    for name, v in (("x_px", x), ("y_px", y), ("roll_deg", roll)):
        p5, p95 = np.percentile(v[ok], [5, 95])
        out[name] = {"sd": _r(float(np.std(v[ok]))), "range": _r(float(p95 - p5))}
    out["step_px"] = {"max": _r(float(step_px.max())) if len(step_px) else None,
                      "p99": _r(float(np.percentile(step_px, 99))) if len(step_px) else None}
    out["step_deg"] = {"max": _r(float(step_deg.max())) if len(step_deg) else None,
                       "p99": _r(float(np.percentile(step_deg, 99))) if len(step_deg) else None}
    return out


def drift(x: Series, y: Series, roll: Series, span: npt.NDArray[np.bool_], fps: float
          ) -> dict[str, Any]:
    """The mean position over the last minute of `span` less the first minute's (a third of
    it each, when it is shorter than three minutes)."""
    idx = np.flatnonzero(span)
    w = int(min(DRIFT_S * fps, len(idx) / 3))
    if w < 1:
        return {}
    first, last = idx[:w], idx[-w:]

    def shift(v: Series) -> float | None:
        return _r(float(np.nanmean(v[last]) - np.nanmean(v[first])))
    return {"window_s": round(w / fps, 1), "x_px": shift(x), "y_px": shift(y),
            "roll_deg": shift(roll)}


def sine_fit(t: Series, v: Series, cpm: tuple[float, float]) -> tuple[float, float, float]:
    """(rate in cycles a minute, peak-to-peak amplitude, share of the variance explained) of
    the one sine that best fits v(t) (least squares, rate searched every 0.1 cpm); unbiased
    for a pure sine even over a few cycles, where a periodogram's peak is not."""
    v = v - v.mean()
    total = float((v**2).sum()) or 1e-12
    best = (float("nan"), 0.0, 0.0)
    for rate in np.arange(cpm[0], cpm[1] + 1e-9, 0.1):
        w = 2 * np.pi * rate / 60 * t
        basis = np.stack([np.sin(w), np.cos(w), np.ones_like(t)], 1)
        coef, *_ = np.linalg.lstsq(basis, v, rcond=None)
        explained = 1 - float(((v - basis @ coef) ** 2).sum()) / total
        if explained > best[2]:
            best = (float(rate), 2 * float(np.hypot(coef[0], coef[1])), explained)
    return best


def breathing(body_y: Series, span: npt.NDArray[np.bool_], fps: float) -> dict[str, Any]:
    """The body band's rise and fall in `span`: slower motion (sway, drift) removed, the rate
    of the best-fitting sine and the rate of counted cycles (from the first upward zero
    crossing to the last, with a hysteresis of a quarter SD: cycles that vary in length, as
    breaths do, still count), amplitude."""
    ok = span & np.isfinite(body_y)
    if ok.sum() < BREATH_MIN_S * fps:
        return {"frames": int(ok.sum())}
    v = body_y - _nan_smooth(body_y, int(TREND_S * fps))
    t = np.flatnonzero(ok) / fps
    rate, p2p, share = sine_fit(t, v[ok], BREATH_CPM)
    smooth = _nan_smooth(v, max(1, int(0.4 * fps)))[ok]
    h = 0.25 * float(np.std(smooth))
    ups: list[float] = []
    state = 0
    for when, s in zip(t, smooth, strict=True):
        if s > h and state < 0:
            ups.append(float(when))
        if s > h:
            state = 1
        elif s < -h:
            state = -1
    counted = 60 * (len(ups) - 1) / (ups[-1] - ups[0]) if len(ups) > 2 else float("nan")
    p5, p95 = np.percentile(v[ok], [5, 95])
    if p95 - p5 < BREATH_MIN_PX:
        rate = counted = float("nan")
    return {"frames": int(ok.sum()), "rate_cpm": _r(rate),
            "cycles_per_minute": _r(counted), "sine_p2p_px": _r(p2p),
            "sine_share": _r(share), "range_px": _r(float(p95 - p5)),
            "sd_px": _r(float(np.std(v[ok])))}


def _spread(v: Series, span: npt.NDArray[np.bool_]) -> dict[str, float | None]:
    ok = span & np.isfinite(v)
    if ok.sum() < 3:
        return {"sd": None, "range": None}
    p5, p95 = np.percentile(v[ok], [5, 95])
    return {"sd": _r(float(np.std(v[ok]))), "range": _r(float(p95 - p5)),
            "median": _r(float(np.median(v[ok])))}


def summarize(series: dict[str, Series], info: dict[str, Any], windows: Windows | None = None
              ) -> dict[str, Any]:
    """Every figure, for each window (and "all"), from AliveMeter.series() and .info()."""
    fps, n = float(info["fps"]), int(info["frames"])
    spans = {"all": mask_of(n, [(0, n)])}
    spans.update({k: mask_of(n, v) for k, v in (windows or {}).items()})
    out: dict[str, Any] = {**info, "windows": {k: int(m.sum()) for k, m in spans.items()}}
    if "head_x" in series:
        hx, hy, hr = series["head_x"], series["head_y"], series["head_roll"]
        out["head"] = {k: motion_figures(hx, hy, hr, m) for k, m in spans.items()}
        # Over idle where there is one: speech moves the head on purpose.
        out["head_drift"] = drift(hx, hy, hr, spans.get("idle", spans["all"]), fps)
        out["breathing"] = {k: breathing(series["body_y"], m, fps) for k, m in spans.items()}
        # Shoulders that only follow the head would show here (near 1).
        out["breathing"]["corr_with_head_y"] = _r(_corr(series["body_y"], hy))
    out["blinks"], out["blink_events"], out["landmark_head"] = {}, {}, {}
    out["brows"], out["gaze"] = {}, {}
    for name in info["landmarkers"]:
        r = relative_openness(series[f"{name}.open_l"], series[f"{name}.open_r"], fps)
        blinks, partial = find_blinks(r)
        out["blinks"][name] = {k: blink_figures(r, blinks, partial, m, fps)
                               for k, m in spans.items()}
        out["blink_events"][name] = [[b.start, b.end, round(b.depth, 3)] for b in blinks]
        px, py, pr = (series[f"{name}.pose_{a}"] for a in ("x", "y", "roll"))
        out["landmark_head"][name] = {k: motion_figures(px, py, pr, m) for k, m in spans.items()}
        out["brows"][name] = {k: _spread(series[f"{name}.brows"], m) for k, m in spans.items()}
        if np.isfinite(series[f"{name}.gaze_x"]).any():
            out["gaze"][name] = {k: {"x": _spread(series[f"{name}.gaze_x"], m),
                                     "y": _spread(series[f"{name}.gaze_y"], m)}
                                 for k, m in spans.items()}
    return out


def _corr(a: Series, b: Series) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])
