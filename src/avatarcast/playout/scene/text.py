"""Text for the scene's layers, anti-aliased with a real font (DejaVu Sans, Debian's
fonts-dejavu-core, through FreeType): a line of text on a rounded translucent box, as RGBA."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .layer import U8

FONTS = Path("/usr/share/fonts/truetype/dejavu")
REGULAR, BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"


class FontError(Exception):
    pass


@functools.lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    path = FONTS / (BOLD if bold else REGULAR)
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        raise FontError(f"the scene's font {path} is missing: apt-get install "
                        "fonts-dejavu-core") from None


def text_box(lines: list[tuple[str, int, bool]], *, fill: tuple[int, int, int] = (255,) * 3,
             box: tuple[int, int, int, int] = (0, 0, 0, 170), pad: int = 8,
             min_width: int = 0) -> U8:
    """Lines of (text, size in px, bold) stacked on a box: RGBA, (h, w, 4)."""
    measured = []
    for text, size, bold in lines:
        f = font(size, bold)
        left, top, right, bottom = (round(v) for v in f.getbbox(text or " "))
        measured.append((text, f, left, top, right - left, bottom - top))
    gap = pad // 2
    w = max([min_width, *[m[4] + 2 * pad for m in measured]])
    h = sum(m[5] for m in measured) + 2 * pad + gap * (len(measured) - 1)
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if box[3]:
        draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=pad, fill=box)
    y = pad
    for text, f, left, top, _, th in measured:
        draw.text((pad - left, y - top), text, font=f, fill=(*fill, 255))
        y += th + gap
    return np.asarray(image, np.uint8)


def strip(text: str, size: int, height: int, *, box: tuple[int, int, int, int] = (0, 0, 0, 190),
          fill: tuple[int, int, int] = (255,) * 3) -> U8:
    """A ticker's band: the text once, then a gap, on a box `height` high (RGBA)."""
    f = font(size)
    left, top, right, bottom = (round(v) for v in f.getbbox(text))
    gap = size * 3
    w = (right - left) + gap
    w += w % 2
    image = Image.new("RGBA", (w, height), box)
    ImageDraw.Draw(image).text((-left, (height - (bottom - top)) // 2 - top), text, font=f,
                               fill=(*fill, 255))
    return np.asarray(image, np.uint8)


def caption_box(shown: str, full: str, size: int, *, pad: int,
                box: tuple[int, int, int, int] = (0, 0, 0, 158),
                fill: tuple[int, int, int] = (255,) * 3) -> U8:
    """A caption line: the box laid out for the whole line (`full`), the words said so far
    (`shown`, its beginning) on it, so words do not shift as they appear (RGBA)."""
    f = font(size)
    left, _, right, _ = (round(v) for v in f.getbbox(full or " "))
    ascent, descent = f.getmetrics()
    w, h = (right - left) + 2 * pad, ascent + descent + 2 * pad
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=pad, fill=box)
    if shown:
        draw.text((pad - left, pad), shown, font=f, fill=(*fill, 255))
    return np.asarray(image, np.uint8)
