# ruff: noqa: RUF001, RUF003  (IPA phoneme symbols look like Latin letters; they are meant)
"""Mouths drawn here, for a talking reference that the code under test did not make.

Each class of sound has a mouth of its own: the lips (a berry lipstick the portrait does not
wear), the dark opening between them, the upper teeth and the tongue, with the chin dropped as
the jaw opens. Shapes, colours and the sounds' classes are this module's own, not the lite
animator's warp or poses; only the landmarks that place the mouth come from the project.
A test tells which class of the reference's mouths a rendered frame shows from the opening's
height and width, and that it is the reference's from the lipstick (measure).

The classes of sound are read from piper's phoneme timings: each frame shows the class of the
sound at its centre, shapes blend over neighbouring frames as lips do, and m/b/p close the
lips fully on at least one frame however short they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Shape:
    opening: float  # the lips apart, at the middle, in the rest mouth's half-widths
    width: float  # the mouth's half-width, in the rest mouth's half-widths
    rounding: float  # 0: a flat, wide opening .. 1: round, the lips pushed forward
    teeth: float  # how much of the upper teeth shows, 0..1
    press: float = 0.0  # the lips pressed together (thinner)


SHAPES: dict[str, Shape] = {
    "rest": Shape(0.0, 1.0, 0.0, 0.0),
    "closed": Shape(0.0, 0.96, 0.0, 0.0, press=1.0),  # p b m
    "open": Shape(0.8, 1.02, 0.0, 1.0),  # a ɑ æ ʌ ɒ ɐ
    "mid": Shape(0.26, 1.06, 0.0, 0.8),  # e ɛ ə
    "wide": Shape(0.16, 1.16, 0.0, 1.0),  # i ɪ j
    "round": Shape(0.22, 0.58, 1.0, 0.2),  # o ɔ
    "oo": Shape(0.1, 0.5, 1.0, 0.0),  # u ʊ w
    "tuck": Shape(0.07, 1.0, 0.0, 1.0),  # f v: the lower lip under the teeth
    "r": Shape(0.2, 0.78, 0.6, 0.3),  # ɹ ɚ ʃ ʒ
    "cons": Shape(0.14, 1.0, 0.0, 0.6),  # every other consonant
}
_SYMBOLS = {"closed": "pbm", "open": "aɑæʌɒɐ", "mid": "eɛəᵻ", "wide": "iɪjy",
            "round": "oɔ", "oo": "uʊwʉ", "tuck": "fv", "r": "ɹrɚɝʃʒ",
            "cons": "tdɾʔkɡgŋxhθðszçnlɫɬ"}
_CLASS_OF = {ch: c for c, chars in _SYMBOLS.items() for ch in chars}
_STRESS, _LENGTH = "ˈˌ", "ː"

# BGR. The lipstick's blue-difference (Cb) is well above skin's and natural lips'.
_LIP = np.array([104, 66, 142], np.float32)
_LIP_LOW = np.array([118, 80, 160], np.float32)
_DARK = np.array([34, 24, 40], np.float32)
_TEETH = np.array([196, 206, 216], np.float32)
_TONGUE = np.array([84, 72, 156], np.float32)
_SUPER = 4  # supersampling of the drawing


@dataclass(frozen=True)
class Phone:
    start: int  # samples
    end: int
    kind: str  # a key of SHAPES


def phones(alignment: list[tuple[str, int]], offset: int) -> list[Phone]:
    """The sounds of piper's (symbol, samples) pairs starting at `offset`, with their class:
    a stress mark's time goes to the sound after it, a length mark's to the one before, a word
    boundary is shared by its neighbours, anything else that is not a sound is rest."""
    out: list[Phone] = []
    t, owed = offset, 0
    for symbol, samples in alignment:
        n = int(samples)
        kind = _CLASS_OF.get(symbol)
        if symbol in _STRESS:
            owed += n
        elif symbol in (_LENGTH + " ") and out and out[-1].kind != "rest":
            keep = n if symbol == _LENGTH else n // 2
            out[-1] = Phone(out[-1].start, out[-1].end + keep, out[-1].kind)
            owed += n - keep
        else:
            out.append(Phone(t - owed, t + n, kind or "rest"))
            owed = 0
        t += n
    return [p for p in out if p.end > p.start]


def frame_kinds(sounds: list[Phone], n: int, spf: int) -> list[str]:
    """The class of the sound at each frame's centre (rest where there is none)."""
    starts = np.array([p.start for p in sounds])
    kinds = []
    for k in range(n):
        at = k * spf + spf // 2
        i = int(np.searchsorted(starts, at, side="right")) - 1
        kinds.append(sounds[i].kind if i >= 0 and sounds[i].end > at else "rest")
    # A closure shorter than a frame still closes the lips, on the frame nearest its middle.
    for p in sounds:
        k = min(max(int((p.start + p.end) / 2 // spf), 0), n - 1)
        if p.kind == "closed" and "closed" not in kinds[max(k - 1, 0) : k + 2]:
            kinds[k] = "closed"
    return kinds


def shapes_for(kinds: list[str]) -> npt.NDArray[np.float32]:
    """(n, 5) shape parameters per frame: each frame's class, blended a little with its
    neighbours' (lips move continuously); closed frames stay fully closed."""
    fields = ("opening", "width", "rounding", "teeth", "press")
    table = np.array([[getattr(SHAPES[k], f) for f in fields] for k in kinds], np.float32)
    padded = np.pad(table, ((1, 1), (0, 0)), mode="edge")
    out = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    closed = np.array([k == "closed" for k in kinds])
    out[closed] = table[closed]
    return np.asarray(out, np.float32)


class MouthPainter:
    """Draws a mouth of any shape on one portrait, where its own mouth was."""

    def __init__(self, bgr: Image, landmarks: npt.NDArray[np.float32]) -> None:
        right, left = landmarks[61, :2], landmarks[291, :2]
        gap = (landmarks[13, :2] + landmarks[14, :2]) / 2
        self.a = float(np.linalg.norm(left - right)) / 2  # the rest mouth's half-width
        axis = (left - right) / (2 * self.a)
        self.centre = np.array([(right[0] + left[0]) / 2, gap[1]], np.float32)
        self._rot = np.array([axis, [-axis[1], axis[0]]], np.float32)  # local u, v -> image
        chin = float(np.dot(landmarks[152, :2] - self.centre, self._rot[1]))
        self._chin = max(chin, 1.0)
        a = self.a
        c = self.centre
        self._box = (int(c[0] - 1.9 * a), int(c[1] - 1.4 * a), int(c[0] + 1.9 * a),
                     int(c[1] + self._chin + 0.6 * a))
        # The portrait without its own lips and teeth: filled in from the skin around them.
        lips = landmarks[[61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314,
                          17, 84, 181, 91, 146], :2]
        mask = np.zeros(bgr.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(lips).astype(np.int32)], 255)
        mask = cv2.dilate(mask, np.ones((7, 7), np.uint8))
        self.face = cv2.inpaint(bgr, mask, 6, cv2.INPAINT_TELEA)

    def draw(self, params: npt.ArrayLike) -> Image:
        opening, width, rounding, teeth, press = (float(x) for x in np.asarray(params))
        a, s = self.a, _SUPER
        x0, y0, x1, y1 = self._box
        out = self.face.copy()
        roi = self._move(out[y0:y1, x0:x1], 0.7 * opening * a, 0.7 * (1 - width))
        big = cv2.resize(roi, ((x1 - x0) * s, (y1 - y0) * s),
                         interpolation=cv2.INTER_LINEAR).astype(np.float32)
        o = opening * a
        w = width * a
        wi = w * (0.9 - 0.42 * rounding)
        p = 2.6 - 0.6 * rounding  # superellipse: flatter when spread, round when rounded
        u = np.linspace(-w, w, 81)
        ui = np.linspace(-wi, wi, 61)
        inner = (1 - np.abs(ui / wi) ** p) ** (1 / p)
        seam_up, seam_low = -0.3 * o * inner, 0.7 * o * inner

        def lifted(uu: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return np.interp(uu, ui, seam_up, left=0.0, right=0.0)

        def dropped(uu: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return np.interp(uu, ui, seam_low, left=0.0, right=0.0)

        x = u / w
        po = 3.4 - 1.2 * rounding  # full lips out to the corners, rounder when rounded
        outer = (1 - np.abs(x) ** po) ** (1 / po)
        bow = 1 - 0.18 * np.exp(-((x / 0.12) ** 2))  # the dip of the cupid's bow
        t_up = (0.21 + 0.08 * rounding) * a * (1 - 0.35 * press)
        t_low = (0.29 + 0.08 * rounding) * a * (1 - 0.3 * press)
        top = np.minimum(-(0.3 * o + t_up) * outer * bow, lifted(u) - 0.3 * t_up * outer)
        bottom = np.maximum((0.7 * o + t_low) * outer, dropped(u) + 0.5 * t_low * outer)
        upper = self._poly(np.r_[u, u[::-1]], np.r_[top, lifted(u)[::-1]])
        lower = self._poly(np.r_[u, u[::-1]], np.r_[dropped(u), bottom[::-1]])
        shape = big.shape[:2]
        self._paint(big, self._mask(shape, upper), _LIP)
        self._paint(big, self._mask(shape, lower), _LIP_LOW)
        if o * s > 1.0:
            hole = self._mask(shape, self._poly(np.r_[ui, ui[::-1]],
                                                np.r_[seam_up, seam_low[::-1]]))
            self._paint(big, hole, _DARK)
            tongue = np.zeros(shape, np.uint8)
            centre = self._poly(np.array([0.0]), np.array([0.7 * o - 0.05 * a]))[0]
            cv2.ellipse(tongue, tuple(int(v) for v in centre),
                        (max(int(0.6 * wi * s), 1), max(int(0.32 * o * s), 1)),
                        float(np.degrees(np.arctan2(self._rot[0, 1], self._rot[0, 0]))),
                        0, 360, 255, -1)
            self._paint(big, tongue & hole, _TONGUE)
            if teeth > 0:
                depth = teeth * min(0.42 * o, 0.22 * a)
                band = self._mask(shape, self._poly(np.r_[ui, ui[::-1]],
                                                    np.r_[seam_up, (seam_up + depth)[::-1]]))
                self._paint(big, band & hole, _TEETH)
        else:  # the seam between closed lips
            seam = self._poly(u[4:-4], np.zeros(len(u) - 8))
            cv2.polylines(big, [seam], False, tuple(float(v) for v in 0.75 * _LIP),
                          max(int(s * (0.9 - 0.5 * press)), 1), cv2.LINE_AA)
        small = cv2.resize(big, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        out[y0:y1, x0:x1] = np.clip(small + 0.5, 0, 255).astype(np.uint8)
        return out

    def _move(self, roi: Image, drop: float, squeeze: float) -> Image:
        """The skin around the mouth moved with it: below the mouth down by `drop` (fading out
        below the chin), and towards the middle by the share `squeeze` (a rounded mouth pulls
        the cheeks in; a negative one stretches them for a spread mouth)."""
        if drop < 0.05 and abs(squeeze) < 0.005:
            return roi.copy()
        x0, y0 = self._box[:2]
        h, w = roi.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        rel = np.stack([xs + x0 - self.centre[0], ys + y0 - self.centre[1]], -1)
        u, v = rel @ self._rot[0], rel @ self._rot[1]
        a = self.a
        reach = self._chin + 0.5 * a
        along = np.clip(1 - np.maximum(v, 0) / reach, 0, 1) * (v > -0.1 * a)
        across = np.clip(1.6 - np.abs(u) / a, 0, 1)
        near = np.clip(1 - np.hypot(u / (2.2 * a), v / (1.3 * a)), 0, 1)
        du = u * (1 / (1 - squeeze * near) - 1)  # where the pixel shown here comes from
        dv = -drop * along * across
        return cv2.remap(roi, xs + du * self._rot[0, 0] + dv * self._rot[1, 0],
                         ys + du * self._rot[0, 1] + dv * self._rot[1, 1],
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _poly(self, u: npt.NDArray[np.float64], v: npt.NDArray[np.float64]
              ) -> npt.NDArray[np.int32]:
        pts = np.stack([u, v], -1) @ self._rot + self.centre - np.array(self._box[:2])
        return np.round(pts * _SUPER).astype(np.int32)

    @staticmethod
    def _mask(shape: tuple[int, ...], poly: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [poly], 255)
        return mask

    @staticmethod
    def _paint(img: npt.NDArray[np.float32], mask: npt.NDArray[np.uint8],
               colour: npt.NDArray[np.float32]) -> None:
        img[mask > 0] = colour


@dataclass(frozen=True)
class Seen:
    """A drawn mouth as a rendered frame shows it, measured from its own colours."""

    lips: int  # pixels of the lipstick
    width: int  # columns the lips span
    gap: float  # rows between the upper and the lower lip, across the middle (median)
    dark: int  # dark pixels (the opening) among the lips
    x: float  # the lips' centre, frame pixels


def seen(frame: Image, centre: tuple[float, float], half: float) -> Seen:
    """Measure the lipstick around `centre` (the mouth at rest, `half` its half-width in
    pixels) in a yuv420p frame: lips are pixels whose Cb stands more than 12 above the skin's
    (under the nose) and are not dark; the opening between them is dark, teeth or tongue."""
    rows, width = frame.shape
    h = rows * 2 // 3
    luma = frame[:h].astype(np.int16)
    cb = frame.reshape(-1)[h * width : h * width + (h // 2) * (width // 2)]
    cb_full = np.repeat(np.repeat(cb.reshape(h // 2, width // 2), 2, 0), 2, 1).astype(np.int16)
    cx, cy = centre
    x0, x1 = int(cx - 1.4 * half), int(cx + 1.4 * half) + 1
    y0, y1 = int(cy - 0.9 * half), int(cy + 1.3 * half) + 1
    y, c = luma[y0:y1, x0:x1], cb_full[y0:y1, x0:x1]
    skin = float(np.median(c[:2]))  # between the nose and the lips
    lips = _lip_blobs((c > skin + 12) & (y >= 60))
    cols = np.flatnonzero(lips.sum(0) >= 2)
    if len(cols) == 0:
        return Seen(0, 0, 0.0, 0, float("nan"))
    rows = np.flatnonzero(lips.sum(1) >= 2)
    dark = int((y[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] < 60).sum())
    mid = round(cx) - x0
    reach = max(round(0.25 * half), 1)
    gaps = []
    for j in range(mid - reach, mid + reach + 1):
        r = np.flatnonzero(lips[:, j])
        if len(r):
            gaps.append(r.max() - r.min() + 1 - len(r))
    xs = np.average(np.arange(x0, x1), weights=lips.sum(0))
    return Seen(int(lips.sum()), int(cols.max() - cols.min() + 1),
                float(np.median(gaps)) if gaps else 0.0, dark, float(xs))


def _lip_blobs(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The lips among the pixels of their colour: the largest blob, and those at least a
    tenth of its size (an open mouth can part the lips in two). A small lip-coloured thing at
    the region's edge (a suit's collar ring beside the jaw of a face framed large) is not a
    lip, and would widen the mouth measured to the whole region."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.1 * areas.max()) + 1
    return np.isin(labels, keep)
