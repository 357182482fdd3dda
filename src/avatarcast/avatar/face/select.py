"""Which animator runs: `auto` picks MuseTalk when a CUDA GPU and its weights are there, the
lite CPU animator otherwise, and says why."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ...settings import FaceSettings

# What MuseTalk v1.5 loads, relative to face.models_dir (the public layout).
MUSETALK_FILES = (
    "musetalkV15/musetalk.json",
    "musetalkV15/unet.pth",
    "sd-vae/config.json",
    "whisper/config.json",
)
VAE_WEIGHTS = ("sd-vae/diffusion_pytorch_model.safetensors", "sd-vae/diffusion_pytorch_model.bin")


def missing_musetalk_files(models_dir: Path) -> list[str]:
    missing = [f for f in MUSETALK_FILES if not (models_dir / f).is_file()]
    if not any((models_dir / f).is_file() for f in VAE_WEIGHTS):
        missing.append(VAE_WEIGHTS[1])
    return missing


def cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose(settings: FaceSettings) -> tuple[str, str]:
    """(animator name, why)."""
    if settings.animator != "auto":
        return settings.animator, "set by face.animator"
    missing = missing_musetalk_files(settings.models_dir)
    if missing:
        return "lite", f"MuseTalk weights missing in {settings.models_dir} ({', '.join(missing)})"
    if settings.device == "cpu":
        return "lite", "face.device is cpu; MuseTalk on a CPU is far slower than real time"
    if not cuda_available():
        return "lite", "no CUDA GPU"
    return "musetalk", "a CUDA GPU and the MuseTalk weights are present"


def needs_face(name: str) -> bool:
    return name != "still"
