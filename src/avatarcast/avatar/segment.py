"""The person in a picture, apart from what is behind them: MediaPipe's selfie segmentation
model (the .tflite files the `mediapipe` 0.10.14 wheel ships, installed with --no-deps for those
files alone; nothing is downloaded), run with LiteRT like the face models. The landscape model
(144x256) for wide pictures, the general one (256x256) otherwise.

The mask it gives is a probability per pixel; brought up to the picture's size it is made a
soft edge: firm inside and outside, a ramp of a few pixels across the border, so hair and
shoulders blend into the new background instead of showing a cut-out line."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ..infra.errors import Unavailable
from ..infra.packaged import fingerprint as files_fingerprint
from ..infra.packaged import package_dir
from ..media.picture import paste

GENERAL = "selfie_segmentation.tflite"
LANDSCAPE = "selfie_segmentation_landscape.tflite"
EDGE = (0.25, 0.75)  # the probabilities the soft edge runs between


class SegmentationError(Unavailable):
    """The segmentation model is missing or cannot run."""


def model_file(name: str) -> Path:
    folder = package_dir("mediapipe")
    if folder is None:
        raise SegmentationError(
            "a replaced background needs the selfie segmentation model, which the mediapipe "
            "package ships; install it with `pip install --no-deps mediapipe==0.10.14` "
            "(scripts/install-deps.sh does)")
    path = folder / "modules" / "selfie_segmentation" / name
    if not path.is_file():
        raise SegmentationError(f"segmentation model {name} not found in {path.parent}")
    return path


@cache
def fingerprint() -> str:
    """Changes when either model file changes; kept with the masks in an avatar's cache."""
    return files_fingerprint([model_file(name) for name in (GENERAL, LANDSCAPE)])


class Segmenter:
    """One interpreter per model; not thread-safe (one per thread)."""

    def __init__(self) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise SegmentationError(f"ai-edge-litert is not installed: {exc}") from None
        self._models = {}
        for name in (GENERAL, LANDSCAPE):
            it = Interpreter(model_path=str(model_file(name)), num_threads=1)
            it.allocate_tensors()
            self._models[name] = it

    def probability(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The model's answer over `rgb` (HxWx3): the chance of each pixel being the person,
        at the model's own size (144x256 for a wide picture, else 256x256)."""
        h, w = rgb.shape[:2]
        it = self._models[LANDSCAPE if w > h * 1.2 else GENERAL]
        (inp,) = it.get_input_details()
        _, mh, mw, _ = (int(d) for d in inp["shape"])
        x = cv2.resize(rgb, (mw, mh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        it.set_tensor(inp["index"], x[None])
        it.invoke()
        out = it.get_tensor(it.get_output_details()[0]["index"])[0, :, :, 0]
        return np.asarray(out, np.float32)

    def mask(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The person's mask over `rgb` (HxWx3), 0-255, at its size (`soft_edge`)."""
        h, w = rgb.shape[:2]
        return soft_edge(answer(self.probability(rgb)), w, h)

    def __call__(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The person's mask over `rgb` (HxWx3), float32 in [0, 1], at its size."""
        return np.asarray(self.mask(rgb), np.float32) * np.float32(1 / 255)


def answer(prob: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """The model's answer in 8 bits (0-255 for a chance of 0-1): what the cache keeps."""
    return np.asarray(np.round(np.clip(prob, 0, 1) * 255), np.uint8)


def _edge_table() -> npt.NDArray[np.uint8]:
    lo, hi = EDGE
    t = np.clip((np.arange(256) / 255 - lo) / (hi - lo), 0.0, 1.0)
    return np.round(t * t * (3 - 2 * t) * 255).astype(np.uint8)


_EDGE_TABLE = _edge_table()


def soft_edge(found: npt.NDArray[np.uint8], width: int, height: int,
              box: tuple[int, int, int, int] | None = None) -> npt.NDArray[np.uint8]:
    """The person's mask over a width x height picture, 0-255, from the model's answer
    `found` (`answer`) over the part of it at `box` (x, y, w, h; None: the whole; a part
    beyond the picture is cut): nothing of the person outside the box. The answer is brought
    up to size, made firm inside and outside with a smooth ramp between (a table), and
    feathered a few pixels: all in 8 bits, a few ms at 720p."""
    x, y, bw, bh = box or (0, 0, width, height)
    full = np.zeros((height, width), np.uint8)
    paste(full, cv2.resize(found, (bw, bh), interpolation=cv2.INTER_LINEAR), x, y)
    soft = cv2.LUT(full, _EDGE_TABLE)
    k = max(3, round(min(width, height) / 180) * 2 + 1)  # a few pixels of feather at any size
    return np.asarray(cv2.GaussianBlur(soft, (k, k), 0), np.uint8)
