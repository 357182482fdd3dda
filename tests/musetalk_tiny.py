"""Tiny random-weight MuseTalk models, saved in exactly the public on-disk layout and formats:
musetalkV15/{musetalk.json, unet.pth}, sd-vae/{config.json, diffusion_pytorch_model.bin},
whisper/ (a whisper config with 4 encoder layers of width 384, weights, preprocessor)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

UNET_CONFIG = {
    "sample_size": 32,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "cross_attention_dim": 384,
    "attention_head_dim": 8,
    "norm_num_groups": 8,
}


def build_tiny_musetalk(models_dir: Path, seed: int = 0) -> Path:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(seed)
    unet_dir = models_dir / "musetalkV15"
    unet_dir.mkdir(parents=True, exist_ok=True)
    (unet_dir / "musetalk.json").write_text(json.dumps(UNET_CONFIG, indent=2))
    torch.save(UNet2DConditionModel(**UNET_CONFIG).state_dict(), unet_dir / "unet.pth")
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 8, 16, 16], layers_per_block=1, norm_num_groups=8,
        sample_size=256,
    )
    vae.save_pretrained(models_dir / "sd-vae", safe_serialization=False)
    config = WhisperConfig(
        d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=64,
        decoder_layers=1, decoder_attention_heads=6, decoder_ffn_dim=64, num_mel_bins=80,
        vocab_size=64, max_target_positions=16, max_source_positions=1500, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    WhisperModel(config).save_pretrained(models_dir / "whisper")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(models_dir / "whisper")
    return models_dir


def save_parser(models_dir: Path, winner: int | None = None, seed: int = 0) -> Path:
    """BiSeNet face parsing with random weights at its real (fixed) size, saved as the public
    `face-parse-bisent/79999_iter.pth` is: a state dict in torch's legacy (pre-zip) format.
    With `winner`, the main head is rigged so that class wins at every pixel: its 3x3 block
    then outputs a constant 1 (BN scale 0, shift 1), and the 1x1 classifier weighs +1 for the
    winner and -1 for every other class."""
    from avatarcast.avatar.face.musetalk.bisenet import BiSeNet

    torch.manual_seed(seed)
    net = BiSeNet()
    if winner is not None:
        with torch.no_grad():
            net.conv_out.conv.bn.weight.zero_()
            net.conv_out.conv.bn.bias.fill_(1.0)
            w = -torch.ones_like(net.conv_out.conv_out.weight)
            w[winner] = 1.0
            net.conv_out.conv_out.weight.copy_(w)
    path = models_dir / "face-parse-bisent" / "79999_iter.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=False)
    return path
