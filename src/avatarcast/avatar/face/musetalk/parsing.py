"""The MuseTalk blend mask from BiSeNet face parsing, when `face-parse-bisent/79999_iter.pth`
is present: the face is parsed with context around it (a square 1.5x the crop box, at
512x512), skin, mouth and lips are kept inside the crop box, the upper half is cleared, the
mask is stretched down a little so a dropping jaw stays inside it, and it is feathered."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch

from ...masks import CROP
from .bisenet import BiSeNet
from .weights import WeightsError, files_fingerprint

log = logging.getLogger(__name__)

PARSER_WEIGHTS = "face-parse-bisent/79999_iter.pth"
INPUT = 512
CONTEXT = 1.5  # the parsed square, relative to the crop box
KEEP = (1, 11, 12, 13)  # skin, mouth interior, upper lip, lower lip
MEAN = (0.485, 0.456, 0.406)  # ImageNet, as the network was trained
STD = (0.229, 0.224, 0.225)
JAW_DROP = 0.06  # how far down (of the crop side) the mask is stretched
FEATHER = 0.15  # Gaussian kernel width, of the crop side

Image = npt.NDArray[np.uint8]
Box = npt.NDArray[np.float32]


def parser_fingerprint(models_dir: Path) -> str | None:
    """Identifies the parsing weights (None when absent); part of the cached material's key."""
    path = models_dir / PARSER_WEIGHTS
    if not path.is_file():
        return None
    return files_fingerprint([path])


def _affine(box: Box, scale: float, size: int) -> npt.NDArray[np.float64]:
    """Maps the square `box` grown `scale` times about its centre onto size x size."""
    side = float(box[2] - box[0]) * scale
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    s = size / side
    return np.array([[s, 0, size / 2 - cx * s], [0, s, size / 2 - cy * s]], np.float64)


def mask_from_labels(labels: npt.NDArray[np.integer]) -> Image:
    """[512, 512] class map of the context square -> the blend mask in 256x256 crop space."""
    keep = np.isin(labels, KEEP).astype(np.float32)
    # The crop box is the centre 1/CONTEXT of the parsed square.
    s, offset = CROP * CONTEXT / INPUT, INPUT * (1 - 1 / CONTEXT) / 2
    m = np.array([[s, 0, -offset * s], [0, s, -offset * s]], np.float64)
    mask = cv2.warpAffine(keep, m, (CROP, CROP), flags=cv2.INTER_LINEAR)
    mask = (np.clip(mask, 0, 1) * 255).astype(np.uint8)
    mask[: CROP // 2] = 0
    drop = max(1, round(JAW_DROP * CROP))
    kernel = np.ones((drop + 1, 5), np.uint8)
    mask = cv2.dilate(mask, kernel, anchor=(2, drop))  # each row takes the rows above it
    k = round(FEATHER * CROP) // 2 * 2 + 1
    return np.asarray(cv2.GaussianBlur(mask, (k, k), 0), dtype=np.uint8)


class FaceParser:
    def __init__(self, net: BiSeNet, device: torch.device, dtype: torch.dtype) -> None:
        self.net = net
        self.device = device
        self.dtype = dtype
        self._mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

    @classmethod
    def load(cls, models_dir: Path, device: torch.device, dtype: torch.dtype) -> FaceParser | None:
        """The parser, or None when its weights are not there (the landmark mask is used)."""
        path = models_dir / PARSER_WEIGHTS
        if not path.is_file():
            return None
        net = BiSeNet()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise ValueError(f"expected a state dict, found {type(state).__name__}")
            net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError) as exc:
            raise WeightsError(f"face parsing weights {path} do not load: {exc}") from exc
        net.to(device=device, dtype=dtype).eval().requires_grad_(False)
        log.info("face parsing (BiSeNet) loaded on %s", device)
        return cls(net, device, dtype)

    @torch.no_grad()
    def labels(self, rgb: list[Image], boxes: list[Box]) -> npt.NDArray[np.uint8]:
        """[B, 512, 512] class per pixel of each frame's context square."""
        squares = np.stack([
            cv2.warpAffine(img, _affine(box, CONTEXT, INPUT), (INPUT, INPUT),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for img, box in zip(rgb, boxes, strict=True)
        ])
        x = torch.from_numpy(squares).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        x = ((x - self._mean) / self._std).to(self.dtype)
        return np.asarray(self.net(x).argmax(1).to(torch.uint8).cpu().numpy())

    def masks(self, rgb: list[Image], boxes: list[Box]) -> Image:
        """[B, 256, 256] blend masks in crop space."""
        return np.stack([mask_from_labels(lab) for lab in self.labels(rgb, boxes)])
