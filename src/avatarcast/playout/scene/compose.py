"""The scene laid over each tick's frame, on the pacer thread, after the avatar's motion and
before the encoder and the taps: so every output (RTMP, SRT, HLS, the recording, WebRTC, the
console's preview) shows the same picture, frame-accurate. Layers are made once (text, logo);
per frame only their rectangles are blended: the ticker is a crop of a band made once, the
clock a layer made again when its text changes."""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from PIL import Image

from ...infra.scratch import Scratch
from ...media.frames import put_behind
from ...media.idle import Behind, Playing
from ...media.loop import LoopingVideo
from ...onair.tick import TickOutput
from ..captions.track import CaptionTrack, Shown
from .backdrop import described
from .layer import Layer, lay
from .mix import MusicMix
from .spec import Corner, LowerThird, Scene, Ticker
from .text import caption_box, strip, text_box

log = logging.getLogger(__name__)

LOWER_THIRD_BOTTOM = 0.78  # of the height: above the captions' band (0.78-0.92)
CAPTIONS_BOTTOM = 0.9


@dataclass(frozen=True)
class _Look:
    """What is laid now: made whole on the event loop and swapped in one assignment, read once
    a frame by the pacer thread, so a change takes effect on a frame boundary."""

    visible: frozenset[str]
    lower: Layer | None = None
    lower_spec: LowerThird | None = None
    ticker: Layer | None = None
    ticker_text: str | None = None
    ticker_w: int = 0
    ticker_step: float = 0.0


class Compositor:
    """Owned by the pacer thread (called once per tick); `apply` is the event loop's."""

    def __init__(self, scene: Scene, base: Path, width: int, height: int, fps: int, *,
                 captions: bool = False) -> None:
        self.scene = scene
        self.base = base  # the scene file's folder: its relative paths are taken from here
        self.backdrop = described(scene.background)  # set by a background switch
        self._w, self._h, self._fps = width, height, fps
        self._m = round(height * 0.03) // 2 * 2
        self.failed: str | None = None
        self.music: MusicMix | None = None  # the bed under the sound (`music` is its layer)
        self.video: Playing | None = None  # the moving background aired last (for /status)
        self._live: Playing | None = None  # the last one used that was not closed
        self.video_failed: str | None = None
        self._scratch = Scratch()
        self._spent: deque[float] = deque(maxlen=300)
        self._fixed: dict[str, tuple[Layer, int, int]] = {}  # logo, label: (layer, x, y)
        self._clock: tuple[str, Layer] | None = None
        # The caption drawn last: (its track, line, words shown), its layer and place.
        self._said: tuple[object, int, int, Layer, int, int] | None = None
        self._lower_in = (False, 0)  # as the pacer last saw it: (shown, since tick)
        visible = {name for name in ("logo", "lower_third", "ticker", "clock")
                   if getattr(scene, name) is not None}
        look = _Look(frozenset())
        if scene.ticker is not None:
            look = self._with_ticker(look, scene.ticker)
        if scene.lower_third is not None:
            look = self._with_lower(look, scene.lower_third)
        self._bottom = height - (look.ticker.size[1] if look.ticker is not None else 0)
        if scene.logo is not None:
            path = scene.logo.path if scene.logo.path.is_absolute() else base / scene.logo.path
            self._fixed["logo"] = self._at(self._logo(path, scene.logo.height),
                                           scene.logo.corner, scene.logo.margin)
        a = scene.ai_label
        if a is not None and a.enabled:
            label = Layer.from_rgba(text_box([(a.text, max(12, round(height * a.size)), True)],
                                             pad=max(4, round(height * a.size * 0.35))))
            self._fixed["ai_label"] = self._at(label, a.corner)
            visible.add("ai_label")
        if captions:
            visible.add("captions")
        self._look = replace(look, visible=frozenset(visible))

    @property
    def ms_per_frame(self) -> float | None:
        return round(statistics.median(self._spent) * 1000, 2) if self._spent else None

    def apply(self, layer: str, *, visible: bool | None = None, title: str | None = None,
              subtitle: str | None = None, text: str | None = None) -> str | None:
        """A change asked by a control message, from the next frame on; the reason it cannot
        be made (nothing changes then), or None."""
        if layer == "music":
            if self.music is None:
                return ("scene: there is no music in this channel's scene (add [music] with "
                        "its folder to the scene file)")
            if visible is not None:
                self.music.play(visible)
            return None
        look = self._look
        if layer == "lower_third" and (title or subtitle):
            spec = look.lower_spec or LowerThird(title=title or " ")
            spec = spec.model_copy(update={k: v for k, v in (("title", title),
                                                             ("subtitle", subtitle)) if v})
            look = self._with_lower(look, spec)
        elif layer == "ticker" and text:
            look = self._with_ticker(look, Ticker(text=text) if self.scene.ticker is None
                                     else self.scene.ticker.model_copy(update={"text": text}))
        if not self._configured(look)[layer]:
            what = {"lower_third": "a title", "ticker": "its text"}.get(layer)
            return (f"scene: the {layer} is not in this channel's scene (add [{layer}] to the "
                    "scene file" + (f", or send {what} with it)" if what else ")"))
        shown = set(look.visible)
        if visible is not None:
            (shown.add if visible else shown.discard)(layer)
        self._look = replace(look, visible=frozenset(shown))
        return None

    def _configured(self, look: _Look) -> dict[str, bool]:
        """Which layers this channel's scene has now (music aside)."""
        return {"logo": "logo" in self._fixed, "ai_label": "ai_label" in self._fixed,
                "lower_third": look.lower is not None, "ticker": look.ticker is not None,
                "clock": self.scene.clock is not None, "captions": True}

    def status(self) -> dict[str, Any]:
        """The scene as it is now: each layer it has, shown or not (the music bed: playing),
        the lower third's and the ticker's words, its cost a frame, and why it stopped if it
        did."""
        look = self._look
        layers = {name: name in look.visible
                  for name, has in self._configured(look).items() if has}
        if self.music is not None:
            layers["music"] = self.music.playing
        lower = look.lower_spec
        return {"layers": layers,
                "lower_third": None if lower is None else {"title": lower.title,
                                                           "subtitle": lower.subtitle},
                "ticker": look.ticker_text, "background": self.backdrop,
                "video": _video_status(self.video, self.video_failed),
                "ms_per_frame": self.ms_per_frame,
                "failed": self.failed}

    def _with_lower(self, look: _Look, spec: LowerThird) -> _Look:
        size = round(self._h * spec.size)
        lines = [(spec.title, size, True)]
        if spec.subtitle:
            lines.append((spec.subtitle, round(size * 0.7), False))
        layer = Layer.from_rgba(text_box(lines, box=(12, 40, 90, 215), pad=round(size * 0.4)))
        return replace(look, lower=layer, lower_spec=spec)

    def _with_ticker(self, look: _Look, t: Ticker) -> _Look:
        height = round(self._h * t.size * 1.6) // 2 * 2
        if look.ticker is not None:
            height = look.ticker.size[1]  # (the band keeps its place)
        band = strip(t.text, round(self._h * t.size), height)
        reps = -(-(self._w + band.shape[1]) // band.shape[1])
        return replace(look, ticker=Layer.from_rgba(np.concatenate([band] * reps, axis=1)),
                       ticker_text=t.text,
                       ticker_w=band.shape[1], ticker_step=t.speed * self._w / self._fps)

    def __call__(self, n: int, out: TickOutput) -> None:
        behind = out.shown.behind if out.shown is not None else None
        self.video = behind.video if behind is not None else None
        t = time.perf_counter()
        if behind is not None and self.video_failed is None:
            self._behind(n, out, behind)
        if self.failed is not None or self._bare(n):
            if behind is not None:
                self._spent.append(time.perf_counter() - t)
            return
        try:
            frame = _own(out)
            track = out.segment.captions if out.segment is not None else None
            said = (track.shown(out.index) if isinstance(track, CaptionTrack) and
                    out.index is not None else None)
            self.draw(frame, n, said, track)
            self._spent.append(time.perf_counter() - t)
        except Exception as exc:  # a bug here must not take the stream off air
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("the scene failed; the picture airs without it")

    def _behind(self, n: int, out: TickOutput, behind: Behind) -> None:
        """The moving background put behind the person, under every layer: apart from them,
        so that a fault in a layer leaves it on air (a still background is in the frames)."""
        try:
            frame = _own(out)
            mask = out.mask if out.mask is not None else behind.masks[out.cycle_index(n)]
            video = behind.video
            if video.closed and self._live is not None:
                video = self._live  # made over a video since replaced and closed: the new one
            elif not video.closed:
                self._live = video
            put_behind(frame, mask, video.at(n), self._scratch)
        except Exception as exc:  # a bug here must not take the stream off air
            self.video_failed = f"{type(exc).__name__}: {exc}"
            log.exception("the moving background failed; the avatar's own airs")

    def _bare(self, n: int) -> bool:
        """Nothing to lay (every layer hidden, the lower third's exit long over): the frame
        goes as it is, not even copied."""
        return not self._look.visible and not self._lower_in[0] and \
            n - self._lower_in[1] > 6 * self._fps

    def draw(self, frame: np.ndarray, n: int, said: Shown | None = None,
             track: object = None) -> None:
        """Every layer shown over `frame` (in place), as on tick `n`, with `said` of caption
        track `track` if the captions are shown."""
        look = self._look  # (one read: a change lands whole, between two frames)
        for name, (layer, x, y) in self._fixed.items():
            if name in look.visible:
                lay(frame, layer, x, y)
        if look.lower is not None:
            self._lower(frame, look, n)
        if look.ticker is not None and "ticker" in look.visible:
            off = int(n * look.ticker_step) % look.ticker_w // 2 * 2
            lay(frame, look.ticker.crop(off, self._w), 0, self._h - look.ticker.size[1])
        c = self.scene.clock
        if c is not None and "clock" in look.visible:
            text = datetime.now(ZoneInfo(c.timezone)).strftime(c.format)
            if self._clock is None or self._clock[0] != text:
                layer = Layer.from_rgba(text_box([(text, round(self._h * c.size), True)],
                                                 pad=round(self._h * c.size * 0.3)))
                self._clock = (text, layer)
            lay(frame, self._clock[1], *self._at(self._clock[1], c.corner)[1:])
        if said is not None and "captions" in look.visible:
            self._caption(frame, said, track)

    def _caption(self, frame: np.ndarray, said: Shown, track: object) -> None:
        """The caption line, centred above the ticker; its layer made once a word."""
        last = self._said
        if last is None or last[0] is not track or last[1:3] != (said.line, said.count):
            size = max(12, round(self._h * 0.05))
            layer = Layer.from_rgba(caption_box(said.text, said.full, size,
                                                pad=max(6, round(self._h * 0.015))))
            w, h = layer.size
            bottom = min(round(self._h * CAPTIONS_BOTTOM), self._bottom - self._m // 2)
            last = self._said = (track, said.line, said.count, layer,
                                 max(0, (self._w - w) // 2), max(0, bottom - h))
        lay(frame, last[3], last[4], last[5])

    def _lower(self, frame: np.ndarray, look: _Look, n: int) -> None:
        """The lower third slides in from the left when shown, and out when hidden."""
        assert look.lower is not None and look.lower_spec is not None
        shown = "lower_third" in look.visible
        if shown != self._lower_in[0]:
            self._lower_in = (shown, n)
        frames = look.lower_spec.enter_s * self._fps
        k = min(1.0, (n - self._lower_in[1] + 1) / frames) if frames >= 1 else 1.0
        k = 1 - (1 - k) ** 3
        k = k if shown else 1 - k
        if k <= 0:
            return
        lw, lh = look.lower.size
        x = round(-lw + (self._m + lw) * k)
        lay(frame, look.lower, x, round(self._h * LOWER_THIRD_BOTTOM) - lh)

    def _at(self, layer: Layer, corner: Corner, margin: float | None = None) -> tuple[
            Layer, int, int]:
        m = self._m if margin is None else round(self._h * margin) // 2 * 2
        w, h = layer.size
        x = m if corner.endswith("left") else self._w - w - m
        y = m if corner.startswith("top") else self._bottom - h - m
        return layer, x, y

    def _logo(self, path: Path, height: float) -> Layer:
        with Image.open(path) as im:
            rgba = im.convert("RGBA")
        h = max(2, round(self._h * height))
        w = max(2, round(rgba.width * h / rgba.height))
        return Layer.from_rgba(np.asarray(rgba.resize((w, h), Image.Resampling.LANCZOS),
                                          np.uint8))


def _own(out: TickOutput) -> np.ndarray:
    """The tick's frame, to draw on: the avatar's frames are shared, never drawn on (the
    motion's are this tick's own), so one of those is copied first, once."""
    if not out.owned:
        out.frame, out.owned = out.frame.copy(), True
    return out.frame


def _video_status(video: Playing | None, failed: str | None) -> dict[str, Any] | None:
    """The moving background as /status shows it: its file, the ticks that found no new
    frame decoded, the decoder's restarts, and why it is down if it is (or why the scene
    stopped putting it behind)."""
    if not isinstance(video, LoopingVideo):
        return None
    return {"file": video.path.name, "late": video.late, "restarts": video.restarts,
            "failed": failed or video.failed}
