"""Benchmark: MuseTalk v1.5 per-frame time at batch 1, 4 and 8, full size, random weights.

Builds the full-size UNet (the v1.5 configuration: 8 -> 4 channels, blocks 320/640/1280/1280,
cross-attention width 384) and the SD VAE decoder with random weights, and times what the
animator does per frame: one UNet step at t=0 on a 32x32 latent with [50, 384] audio features,
then the VAE decode to 256x256. CUDA with fp16 when there is a GPU, else the CPU in fp32.

Usage: .venv/bin/python -m bench.musetalk [--runs 3] [--batches 1,4,8]
It reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

UNET = {
    "sample_size": 64, "in_channels": 8, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 384,
    "attention_head_dim": 8,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}
VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "sample_size": 256,
}


def time_batches(batches: tuple[int, ...], runs: int) -> dict[str, Any]:
    """Per batch size: UNet and VAE milliseconds per frame, median of `runs` after a warm-up."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.float16 if cuda else torch.float32
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET).to(device, dtype).eval()
    vae = AutoencoderKL(**VAE).to(device, dtype).eval()
    name = torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads"
    out: dict[str, Any] = {
        "device": name, "dtype": str(dtype).removeprefix("torch."),
        "unet_params_m": round(sum(p.numel() for p in unet.parameters()) / 1e6),
    }
    for b in batches:
        lat = torch.randn(b, 8, 32, 32, device=device, dtype=dtype)
        audio = torch.randn(b, 50, 384, device=device, dtype=dtype)
        t0 = torch.zeros(b, device=device, dtype=torch.long)
        u_times, v_times = [], []
        with torch.no_grad():
            for run in range(runs + 1):  # the first run warms up and is not counted
                t = time.perf_counter()
                pred = unet(lat, t0, encoder_hidden_states=audio).sample
                if cuda:
                    torch.cuda.synchronize()
                mid = time.perf_counter()
                vae.decode(pred / 0.18215)
                if cuda:
                    torch.cuda.synchronize()
                end = time.perf_counter()
                if run:
                    u_times.append((mid - t) / b)
                    v_times.append((end - mid) / b)
        u, v = statistics.median(u_times) * 1000, statistics.median(v_times) * 1000
        out[f"batch{b}"] = {"unet_ms": round(u, 1), "vae_ms": round(v, 1),
                            "total_ms": round(u + v, 1), "fps": round(1000 / (u + v), 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batches", default="1,4,8")
    args = ap.parse_args()
    res = time_batches(tuple(int(x) for x in args.batches.split(",")), args.runs)
    print(f"MuseTalk v1.5 full size, random weights: UNet {res['unet_params_m']} M parameters, "
          f"{res['device']}, {res['dtype']}")
    print(f"{'batch':>5} {'unet ms/frame':>14} {'vae ms/frame':>13} {'total ms/frame':>15} "
          f"{'fps':>6}")
    for key, r in res.items():
        if key.startswith("batch"):
            print(f"{key[5:]:>5} {r['unet_ms']:14.1f} {r['vae_ms']:13.1f} {r['total_ms']:15.1f} "
                  f"{r['fps']:6.1f}")


if __name__ == "__main__":
    main()
