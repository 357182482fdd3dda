"""Loading MuseTalk v1.5 from the public on-disk layout under face.models_dir:

    musetalkV15/musetalk.json   UNet2DConditionModel keyword arguments
    musetalkV15/unet.pth        its state dict (torch.save)
    sd-vae/                     AutoencoderKL (config.json + diffusion_pytorch_model.*)
    whisper/                    whisper-tiny (config, weights, preprocessor_config.json)
    face-parse-bisent/          BiSeNet face parsing, optional (parsing.py)
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ....infra.errors import Unavailable
from ..select import missing_musetalk_files

log = logging.getLogger(__name__)

LATENT_SCALE = 0.18215  # the SD VAE's latent scaling


class WeightsError(Unavailable):
    """The MuseTalk weights are missing or do not load."""


@dataclass
class MuseTalkModels:
    unet: Any
    vae: Any
    whisper_encoder: Any
    feature_extractor: Any
    device: torch.device
    dtype: torch.dtype


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise WeightsError("face.device is cuda, but no CUDA GPU is available")
        return torch.device("cuda")
    return torch.device("cpu")


def auto_batch(device: torch.device) -> int:
    if device.type != "cuda":
        return 4
    free, _ = torch.cuda.mem_get_info(device)
    # About 0.4 GB of activations per frame in fp16 at 256x256 (UNet + VAE decode), halved
    # for headroom.
    return int(max(1, min(32, free * 0.5 // 0.4e9)))


def files_fingerprint(paths: list[Path]) -> str:
    """Names, sizes and first MiB of each file: cheap, and changes with any real new weights."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(str(p.stat().st_size).encode())
        with p.open("rb") as f:
            h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def model_dtype(device: torch.device, fp16: bool) -> torch.dtype:
    return torch.float16 if fp16 and device.type == "cuda" else torch.float32


def _quiet() -> None:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # Their notices (no accelerate, pickled .bin weights) are not ours to act on.
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def _require(models_dir: Path, missing: list[str]) -> None:
    if missing:
        raise WeightsError(
            f"MuseTalk weights missing in {models_dir}: {', '.join(missing)}; run "
            "`avatarcast models download`"
        )


def load_vae(models_dir: Path, device: torch.device, dtype: torch.dtype) -> Any:
    """The SD VAE alone: all that preparing an avatar's latents needs."""
    _require(models_dir, [m for m in missing_musetalk_files(models_dir) if "sd-vae" in m])
    from diffusers import AutoencoderKL

    _quiet()
    try:
        vae = AutoencoderKL.from_pretrained(models_dir / "sd-vae")
    except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"MuseTalk weights in {models_dir} do not load: {exc}") from exc
    return vae.to(device=device, dtype=dtype).eval().requires_grad_(False)


def load_models(models_dir: Path, device: torch.device, fp16: bool) -> MuseTalkModels:
    _require(models_dir, missing_musetalk_files(models_dir))
    from diffusers import UNet2DConditionModel
    from transformers import WhisperFeatureExtractor, WhisperModel

    _quiet()
    dtype = model_dtype(device, fp16)
    vae = load_vae(models_dir, device, dtype)
    try:
        config = json.loads((models_dir / "musetalkV15" / "musetalk.json").read_text())
        unet = UNet2DConditionModel(**config)
        state = torch.load(models_dir / "musetalkV15" / "unet.pth", map_location="cpu",
                           weights_only=True)
        unet.load_state_dict(state)
        whisper = WhisperModel.from_pretrained(models_dir / "whisper").get_encoder()
        extractor = WhisperFeatureExtractor.from_pretrained(models_dir / "whisper")
    except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"MuseTalk weights in {models_dir} do not load: {exc}") from exc
    for m in (unet, whisper):
        m.to(device=device, dtype=dtype).eval().requires_grad_(False)
    log.info(
        "MuseTalk loaded on %s (%s): UNet %.0f M parameters", device, dtype,
        sum(p.numel() for p in unet.parameters()) / 1e6,
    )
    return MuseTalkModels(unet, vae, whisper, extractor, device, dtype)


_SHARED: dict[tuple[str, str, bool], MuseTalkModels] = {}
_SHARED_LOCK = threading.Lock()


def shared_models(models_dir: Path, device: torch.device, fp16: bool) -> MuseTalkModels:
    """One copy of the weights in the process, however many avatars MuseTalk animates (each
    look has its own animator; the GPU holds the models once)."""
    key = (str(models_dir.resolve()), str(device), fp16)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = load_models(models_dir, device, fp16)
        return _SHARED[key]
