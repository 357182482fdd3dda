"""The MuseTalk animator: per cycle frame, the VAE latents of the masked and the reference
face crop (computed once, cached beside the avatar); per video frame, one UNet step at t=0
conditioned on that frame's audio features, decoded, and blended back into the frame through
the feathered lower-face mask. Frames come out in batches, so air can start early."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch

from ...audio import Pcm
from ...avatar.masks import CROP
from ...avatar.runtime import Avatar, FaceTrack, rgb_to_frame
from ...frames import Frame
from ...settings import FaceSettings
from .features import encoder_states, frame_features
from .weights import LATENT_SCALE, MuseTalkModels, load_models, pick_device

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]


def crop_face(rgb: Image, box: npt.NDArray[np.float32]) -> Image:
    """The square crop box resampled to 256x256 (edges replicated where it leaves the frame)."""
    s = CROP / float(box[2] - box[0])
    m = np.array([[s, 0, -box[0] * s], [0, s, -box[1] * s]], np.float64)
    return np.asarray(cv2.warpAffine(rgb, m, (CROP, CROP), flags=cv2.INTER_AREA,
                                     borderMode=cv2.BORDER_REPLICATE), dtype=np.uint8)


def to_tensor(images: Image, models: MuseTalkModels) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return (x.to(models.device, models.dtype) / 127.5) - 1.0


@torch.no_grad()
def crop_latents(models: MuseTalkModels, crops: Image) -> torch.Tensor:
    """[B, 8, 32, 32]: the crop with its lower half blanked, then the crop itself."""
    masked = crops.copy()
    masked[:, CROP // 2 :] = 0
    both = to_tensor(np.concatenate([masked, crops]), models)
    lat = models.vae.encode(both).latent_dist.mode() * LATENT_SCALE
    half = len(crops)
    return torch.cat([lat[:half], lat[half:]], dim=1)


@torch.no_grad()
def generate(models: MuseTalkModels, latents: torch.Tensor, audio: torch.Tensor) -> Image:
    """One denoising step at t=0 and a decode: [B, 256, 256, 3] RGB."""
    t = torch.zeros(len(latents), device=models.device, dtype=torch.long)
    pred = models.unet(latents, t, encoder_hidden_states=audio.to(models.dtype)).sample
    img = models.vae.decode(pred / LATENT_SCALE).sample
    img = ((img.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    return np.asarray(img.permute(0, 2, 3, 1).cpu().numpy())


def blend(frame_rgb: Image, face: Image, box: npt.NDArray[np.float32], mask: Image) -> Image:
    """The generated face pasted into a copy of the frame through the mask (256x256, 0..255),
    its upper half cleared so only the mouth and jaw change."""
    h, w = frame_rgb.shape[:2]
    x0, y0 = round(float(box[0])), round(float(box[1]))
    side = max(2, round(float(box[2] - box[0])))
    weight = mask.astype(np.float32) / 255.0
    rows = np.arange(CROP, dtype=np.float32)
    weight *= np.clip((rows - CROP * 0.5) / (CROP * 0.05), 0, 1)[:, None]
    face_s = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
    weight_s = cv2.resize(weight, (side, side), interpolation=cv2.INTER_LINEAR)
    fx0, fy0 = max(0, -x0), max(0, -y0)
    ix0, iy0 = max(0, x0), max(0, y0)
    ix1, iy1 = min(w, x0 + side), min(h, y0 + side)
    out = frame_rgb.copy()
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    region = out[iy0:iy1, ix0:ix1].astype(np.float32)
    src = face_s[fy0 : fy0 + iy1 - iy0, fx0 : fx0 + ix1 - ix0].astype(np.float32)
    a = weight_s[fy0 : fy0 + iy1 - iy0, fx0 : fx0 + ix1 - ix0, None]
    out[iy0:iy1, ix0:ix1] = np.round(region + (src - region) * a).astype(np.uint8)
    return out


def auto_batch(device: torch.device) -> int:
    if device.type != "cuda":
        return 4
    free, _ = torch.cuda.mem_get_info(device)
    # About 0.4 GB of activations per frame in fp16 at 256x256 (UNet + VAE decode), halved
    # for headroom.
    return int(max(1, min(32, free * 0.5 // 0.4e9)))


class MuseTalkAnimator:
    name = "musetalk"

    def __init__(self, settings: FaceSettings, fps: int) -> None:
        self._settings = settings
        self._fps = fps
        self._models: MuseTalkModels | None = None
        self._avatar: Avatar | None = None
        self._latents: torch.Tensor | None = None
        self.batch = settings.batch_size or 4

    def load(self, avatar: Avatar) -> None:
        if avatar.faces is None or avatar.rgb is None:
            raise ValueError("the musetalk animator needs a prepared avatar kept in RGB")
        device = pick_device(self._settings.device)
        self._models = load_models(self._settings.models_dir, device, self._settings.fp16)
        self.batch = self._settings.batch_size or auto_batch(device)
        self._latents = self._cycle_latents(avatar.rgb, avatar.faces, avatar.directory)
        self._avatar = avatar
        log.info("musetalk: %d cycle latents ready, batch %d", len(self._latents), self.batch)

    def _cycle_latents(
        self, rgb: list[Image], faces: FaceTrack, directory: Path | None
    ) -> torch.Tensor:
        assert self._models is not None
        h, w = rgb[0].shape[:2]
        key = f"{vae_fingerprint(self._settings.models_dir)}-{w}x{h}"
        path = directory / "musetalk.npz" if directory is not None else None
        if path is not None and path.is_file():
            with np.load(path) as cached:
                if str(cached["key"]) == key and len(cached["latents"]) == len(rgb):
                    return torch.from_numpy(cached["latents"]).to(
                        self._models.device, self._models.dtype
                    )
        parts = []
        for i in range(0, len(rgb), self.batch):
            crops = np.stack([crop_face(rgb[k], faces.crop_boxes[k])
                              for k in range(i, min(len(rgb), i + self.batch))])
            parts.append(crop_latents(self._models, crops))
        latents = torch.cat(parts)
        if path is not None:
            tmp = path.with_suffix(".tmp.npz")
            try:
                np.savez(tmp, key=np.array(key), latents=latents.float().cpu().numpy())
                tmp.replace(path)
            except OSError as exc:  # a read-only cache costs time at the next start, no more
                log.warning("cannot cache MuseTalk latents in %s: %s", path, exc)
        return latents

    def render(self, audio_16k: Pcm, cycle_indices: Sequence[int]) -> Iterator[list[Frame]]:
        if self._models is None or self._avatar is None or self._latents is None:
            raise RuntimeError("MuseTalkAnimator.render before load")
        faces, rgb = self._avatar.faces, self._avatar.rgb
        assert faces is not None and rgb is not None
        audio = audio_16k.astype(np.float32) / 32768.0
        feats = frame_features(encoder_states(self._models, audio), len(cycle_indices),
                               self._fps)
        for i in range(0, len(cycle_indices), self.batch):
            idx = list(cycle_indices[i : i + self.batch])
            lat = self._latents[torch.tensor(idx, device=self._latents.device)]
            faces_out = generate(self._models, lat, feats[i : i + len(idx)])
            yield [
                rgb_to_frame(blend(rgb[c], face, faces.crop_boxes[c], faces.lower_face_masks[c]))
                for c, face in zip(idx, faces_out, strict=True)
            ]


def vae_fingerprint(models_dir: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((models_dir / "sd-vae").glob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(str(p.stat().st_size).encode())
            with p.open("rb") as f:
                h.update(f.read(1 << 20))
    return h.hexdigest()[:16]
