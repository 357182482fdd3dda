"""Captions burned into the picture: a lower-third box with the current line, each word
appearing on the first frame whose sound contains the word's first sample. The box is laid out
for the whole line, so words do not shift as they appear. Owned by one segment's render job."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ...media.frames import Frame
from .words import Word, caption_lines

_BOX_ALPHA = 0.62
_HOLD_S = 1.0  # a line stays this long after its last word ends, unless the next begins


@dataclass
class _Overlay:
    x: int
    y: int
    yuv: npt.NDArray[np.uint8]  # I420 of the box and text, (h * 3 / 2, w)
    alpha: npt.NDArray[np.float32]  # (h, w)
    alpha_half: npt.NDArray[np.float32]  # (h / 2, w / 2)


class Captioner:
    def __init__(self, *, width: int, height: int, spf: int, fps: int, max_chars: int) -> None:
        from PIL import ImageFont

        self._w, self._h = width, height
        self._spf = spf
        self._hold = int(_HOLD_S * fps * spf)
        self._max_chars = max_chars
        self._font = ImageFont.load_default(size=max(12, round(height * 0.05)))
        self._words: list[Word] = []
        self._lines: list[list[Word]] = []
        self._starts: list[int] = []  # where each line begins
        self._cache: dict[tuple[int, int], _Overlay] = {}

    def add(self, words: list[Word]) -> None:
        if words:
            self._words.extend(words)
            self._lines = caption_lines(self._words, self._max_chars)
            self._starts = [line[0].start for line in self._lines]

    def shown(self, k: int) -> tuple[int, int] | None:
        """(line, words of it shown) on frame k of the segment, or None: the last line begun
        by the end of the frame's sound, until a while after its last word."""
        end = (k + 1) * self._spf  # the frame's sound ends here
        i = bisect.bisect_left(self._starts, end) - 1
        if i < 0:
            return None
        line = self._lines[i]
        if k * self._spf > line[-1].end + self._hold:
            return None
        return i, sum(1 for w in line if w.start < end)

    def draw_all(self, frames: list[Frame], first: int) -> list[Frame]:
        return [self.draw(f, first + i) for i, f in enumerate(frames)]

    def draw(self, frame: Frame, k: int) -> Frame:
        shown = self.shown(k)
        if shown is None:
            return frame
        ov = self._cache.get(shown)
        if ov is None:
            ov = self._cache[shown] = self._overlay(*shown)
        out = frame.copy()
        h, w = ov.alpha.shape
        y, x = ov.y, ov.x
        luma = out[y : y + h, x : x + w].astype(np.float32)
        out[y : y + h, x : x + w] = np.round(
            luma + (ov.yuv[:h].astype(np.float32) - luma) * ov.alpha).astype(np.uint8)
        q, hh, hw = self._w * self._h // 4, h // 2, w // 2
        planes = out.reshape(-1)[self._w * self._h :]
        for p in range(2):
            plane = planes[p * q : (p + 1) * q].reshape(self._h // 2, self._w // 2)
            src = ov.yuv[h:].reshape(-1)[p * hh * hw : (p + 1) * hh * hw].reshape(hh, hw)
            region = plane[y // 2 : y // 2 + hh, x // 2 : x // 2 + hw]
            cur = region.astype(np.float32)
            region[:] = np.round(cur + (src.astype(np.float32) - cur) * ov.alpha_half).astype(
                np.uint8)
        return out

    def _overlay(self, line_no: int, count: int) -> _Overlay:
        from PIL import Image, ImageDraw

        line = self._lines[line_no]
        full = " ".join(w.text for w in line)
        font = self._font
        left, top, right, bottom = (round(v) for v in font.getbbox(full))
        pad = max(6, round(self._h * 0.015))
        bw = min(self._w - 2, (right - left) + 2 * pad + 1) // 2 * 2 + 2
        bh = ((bottom - top) + 2 * pad) // 2 * 2 + 2
        x = max(0, (self._w - bw) // 2 // 2 * 2)
        y = max(0, min(self._h - bh, round(self._h * 0.9) - bh) // 2 * 2)
        rgb = Image.new("RGB", (bw, bh), (0, 0, 0))
        mask = Image.new("L", (bw, bh), 0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, bw - 1, bh - 1), radius=pad,
                                               fill=round(255 * _BOX_ALPHA))
        shown = " ".join(w.text for w in line[:count])
        if shown:
            ImageDraw.Draw(rgb).text((pad - left, pad - top), shown, font=font,
                                     fill=(255, 255, 255))
            ImageDraw.Draw(mask).text((pad - left, pad - top), shown, font=font, fill=255)
        arr = np.asarray(rgb, np.uint8)
        yuv = np.asarray(cv2.cvtColor(arr, cv2.COLOR_RGB2YUV_I420), np.uint8)
        alpha = np.asarray(mask, np.float32) / 255.0
        half = cv2.resize(alpha, (bw // 2, bh // 2), interpolation=cv2.INTER_AREA)
        return _Overlay(x, y, yuv, alpha, half.astype(np.float32))
