"""What MuseTalk needs for each cycle frame, computed once and cached beside the avatar as
`musetalk.npz`: the VAE latents of the masked and the reference face crop, and the blend mask
(BiSeNet face parsing when its weights are present, the landmark lower-face mask otherwise).
The cache is keyed by the VAE, the parser and the output size; any change recomputes it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch

from ....settings import FaceSettings
from ...masks import CROP
from ...runtime import Avatar
from .parsing import FaceParser, parser_fingerprint
from .weights import (
    LATENT_SCALE,
    auto_batch,
    files_fingerprint,
    load_vae,
    model_dtype,
    pick_device,
)

log = logging.getLogger(__name__)

FORMAT = 2
FILE = "musetalk.npz"
PARSED, LANDMARKS = "face parsing", "landmarks"

Image = npt.NDArray[np.uint8]


@dataclass
class CycleMaterial:
    latents: torch.Tensor  # [N, 8, 32, 32]: masked crop, then reference crop
    masks: Image  # [N, 256, 256] blend masks in crop space
    mask_source: str  # PARSED or LANDMARKS


def crop_face(rgb: Image, box: npt.NDArray[np.float32]) -> Image:
    """The square crop box resampled to 256x256 (edges replicated where it leaves the frame)."""
    s = CROP / float(box[2] - box[0])
    m = np.array([[s, 0, -box[0] * s], [0, s, -box[1] * s]], np.float64)
    return np.asarray(cv2.warpAffine(rgb, m, (CROP, CROP), flags=cv2.INTER_AREA,
                                     borderMode=cv2.BORDER_REPLICATE), dtype=np.uint8)


def to_tensor(images: Image, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return (x.to(device, dtype) / 127.5) - 1.0


@torch.no_grad()
def crop_latents(vae: Any, crops: Image) -> torch.Tensor:
    """[B, 8, 32, 32]: the crop with its lower half blanked, then the crop itself."""
    masked = crops.copy()
    masked[:, CROP // 2 :] = 0
    p = next(vae.parameters())
    lat = vae.encode(to_tensor(np.concatenate([masked, crops]), p.device, p.dtype))
    lat = lat.latent_dist.mode() * LATENT_SCALE
    half = len(crops)
    return torch.cat([lat[:half], lat[half:]], dim=1)


def material_key(models_dir: Path, width: int, height: int) -> str:
    parser = parser_fingerprint(models_dir) or LANDMARKS
    vae = files_fingerprint(sorted(p for p in (models_dir / "sd-vae").glob("*") if p.is_file()))
    return f"{FORMAT}-{vae}-{parser}-{width}x{height}"


def _read(path: Path, key: str, frames: int, latents_to: torch.Tensor) -> CycleMaterial | None:
    try:
        with np.load(path) as cached:
            if str(cached["key"]) != key or len(cached["latents"]) != frames:
                return None
            latents = torch.from_numpy(cached["latents"]).to(latents_to.device,
                                                              latents_to.dtype)
            return CycleMaterial(latents, cached["masks"], str(cached["source"]))
    except (OSError, KeyError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None


def _write(path: Path, key: str, material: CycleMaterial) -> None:
    tmp = path.with_suffix(".tmp.npz")
    try:
        np.savez(tmp, key=np.array(key), latents=material.latents.float().cpu().numpy(),
                 masks=material.masks, source=np.array(material.mask_source))
        tmp.replace(path)
    except OSError as exc:  # a read-only cache costs time at the next start, no more
        log.warning("cannot cache MuseTalk material in %s: %s", path, exc)


def cycle_material(
    vae: Any, parser: FaceParser | None, avatar: Avatar, models_dir: Path, batch: int
) -> CycleMaterial:
    """Read from the avatar's cache when its key matches, computed (and cached) otherwise."""
    rgb, faces = avatar.rgb, avatar.faces
    if rgb is None or faces is None:
        raise ValueError("the musetalk animator needs a prepared avatar kept in RGB")
    h, w = rgb[0].shape[:2]
    key = material_key(models_dir, w, h)
    path = avatar.directory / FILE if avatar.directory is not None else None
    probe = next(vae.parameters())
    if path is not None and path.is_file():
        found = _read(path, key, len(rgb), probe)
        if found is not None:
            return found
    latents, masks = [], []
    for i in range(0, len(rgb), batch):
        span = range(i, min(len(rgb), i + batch))
        crops = np.stack([crop_face(rgb[k], faces.crop_boxes[k]) for k in span])
        latents.append(crop_latents(vae, crops))
        if parser is not None:
            masks.append(parser.masks([rgb[k] for k in span], [faces.crop_boxes[k] for k in span]))
    material = CycleMaterial(
        torch.cat(latents),
        np.concatenate(masks) if parser is not None else faces.lower_face_masks.copy(),
        PARSED if parser is not None else LANDMARKS,
    )
    if path is not None:
        _write(path, key, material)
    return material


def prepare_material(settings: FaceSettings, avatar: Avatar) -> CycleMaterial:
    """For `avatarcast prepare`: the VAE and the parser alone, not the UNet or Whisper."""
    device = pick_device(settings.device)
    dtype = model_dtype(device, settings.fp16)
    vae = load_vae(settings.models_dir, device, dtype)
    parser = FaceParser.load(settings.models_dir, device, dtype)
    batch = settings.batch_size or auto_batch(device)
    return cycle_material(vae, parser, avatar, settings.models_dir, batch)
