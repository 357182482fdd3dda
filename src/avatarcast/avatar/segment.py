"""The person in a picture, apart from what is behind them: MediaPipe's selfie segmentation
model (the .tflite files the `mediapipe` 0.10.14 wheel ships, installed with --no-deps for those
files alone; nothing is downloaded), run with LiteRT like the face models. The landscape model
(144x256) for wide pictures, the general one (256x256) otherwise.

The mask it gives is a probability per pixel; brought up to the picture's size it is made a
soft edge: firm inside and outside, a ramp of a few pixels across the border, so hair and
shoulders blend into the new background instead of showing a cut-out line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ..infra.errors import Unavailable

GENERAL = "selfie_segmentation.tflite"
LANDSCAPE = "selfie_segmentation_landscape.tflite"
EDGE = (0.25, 0.75)  # the probabilities the soft edge runs between


class SegmentationError(Unavailable):
    """The segmentation model is missing or cannot run."""


def model_file(name: str) -> Path:
    # find_spec locates the package without importing it (its __init__ needs what we do not
    # install); only the model files are used.
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise SegmentationError(
            "a replaced background needs the selfie segmentation model, which the mediapipe "
            "package ships; install it with `pip install --no-deps mediapipe==0.10.14` "
            "(scripts/install-deps.sh does)")
    path = (Path(next(iter(spec.submodule_search_locations))) / "modules"
            / "selfie_segmentation" / name)
    if not path.is_file():
        raise SegmentationError(f"segmentation model {name} not found in {path.parent}")
    return path


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

    def __call__(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The person's mask over `rgb` (HxWx3), float32 in [0, 1], at its size."""
        h, w = rgb.shape[:2]
        it = self._models[LANDSCAPE if w > h * 1.2 else GENERAL]
        (inp,) = it.get_input_details()
        _, mh, mw, _ = (int(d) for d in inp["shape"])
        x = cv2.resize(rgb, (mw, mh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        it.set_tensor(inp["index"], x[None])
        it.invoke()
        prob = it.get_tensor(it.get_output_details()[0]["index"])[0, :, :, 0]
        up = cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        lo, hi = EDGE
        t = np.clip((up - lo) / (hi - lo), 0.0, 1.0)
        soft = t * t * (3 - 2 * t)
        k = max(3, round(min(w, h) / 180) * 2 + 1)  # a few pixels of feather at any size
        return np.asarray(cv2.GaussianBlur(soft, (k, k), 0), np.float32)
