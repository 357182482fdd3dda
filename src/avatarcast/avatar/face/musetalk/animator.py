"""The MuseTalk animator: per video frame, one UNet step at t=0 on its cycle frame's latents
(material.py), conditioned on that frame's audio features, decoded, and blended back into the
frame through the cycle frame's feathered mask. Frames come out in batches, so air can start
early."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import numpy.typing as npt
import torch

from ....media.audio import Pcm
from ....media.frames import Frame
from ....settings import FaceSettings
from ...masks import CROP
from ...runtime import Avatar, rgb_to_frame
from ..mouthtrack import MouthTrack
from .features import encoder_states, frame_features
from .material import CycleMaterial, cycle_material
from .parsing import FaceParser
from .weights import LATENT_SCALE, MuseTalkModels, auto_batch, pick_device, shared_models

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]


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


class MuseTalkAnimator:
    name = "musetalk"

    def __init__(self, settings: FaceSettings, fps: int) -> None:
        self._settings = settings
        self._fps = fps
        self._models: MuseTalkModels | None = None
        self._avatar: Avatar | None = None
        self._material: CycleMaterial | None = None
        self.batch = settings.batch_size or 4

    def load(self, avatar: Avatar) -> None:
        if avatar.faces is None or avatar.rgb is None:
            raise ValueError("the musetalk animator needs a prepared avatar kept in RGB")
        device = pick_device(self._settings.device)
        self._models = shared_models(self._settings.models_dir, device, self._settings.fp16)
        self.batch = self._settings.batch_size or auto_batch(device)
        parser = FaceParser.load(self._settings.models_dir, device, self._models.dtype)
        self._material = cycle_material(self._models.vae, parser, avatar,
                                        self._settings.models_dir, self.batch)
        self._avatar = avatar
        log.info("musetalk: %d cycle frames ready, batch %d, blend mask from %s",
                 len(self._material.latents), self.batch, self._material.mask_source)

    async def aclose(self) -> None:
        # The weights are shared by every avatar (shared_models): only this avatar's go.
        self._models = None
        self._material = None
        self._avatar = None

    def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[list[Frame]]:
        if self._models is None or self._avatar is None or self._material is None:
            raise RuntimeError("MuseTalkAnimator.render before load")
        faces, rgb = self._avatar.faces, self._avatar.rgb
        assert faces is not None and rgb is not None
        audio = audio_16k.astype(np.float32) / 32768.0
        feats = frame_features(encoder_states(self._models, audio), len(cycle_indices),
                               self._fps)
        for i in range(0, len(cycle_indices), self.batch):
            idx = list(cycle_indices[i : i + self.batch])
            latents = self._material.latents
            lat = latents[torch.tensor(idx, device=latents.device)]
            faces_out = generate(self._models, lat, feats[i : i + len(idx)])
            yield [
                rgb_to_frame(blend(rgb[c], face, faces.crop_boxes[c], self._material.masks[c]))
                for c, face in zip(idx, faces_out, strict=True)
            ]
