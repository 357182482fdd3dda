"""Audio features per video frame, as MuseTalk v1.5 cuts them.

Whisper-tiny's encoder runs on 30 s windows of 16 kHz audio and yields all its hidden states
(the embedding and each of its 4 layers) at 50 steps a second. The sequence is padded with
zeros, 2 * p steps before and 6 * p after, where p = floor(50 / fps); frame i takes the 10
steps from floor(i * 50 / fps), giving 10 x 5 x 384 = [50, 384] per frame, to which a
sinusoidal positional encoding is added.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch

from .weights import MuseTalkModels

RATE = 16_000
STEPS_PER_S = 50
WINDOW_S = 30
PAD_LEFT, PAD_RIGHT = 2, 2  # in units of p, as MuseTalk's defaults
STEPS_PER_FRAME = 2 * (PAD_LEFT + PAD_RIGHT + 1)  # 10


def positional_encoding(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)
    return pe


@torch.no_grad()
def encoder_states(models: MuseTalkModels, audio_16k: npt.NDArray[np.float32]) -> torch.Tensor:
    """[steps, layers, dim] hidden states at 50 Hz for the whole audio."""
    window = WINDOW_S * RATE
    parts = []
    for start in range(0, max(len(audio_16k), 1), window):
        chunk = audio_16k[start : start + window]
        mel = models.feature_extractor(chunk, sampling_rate=RATE, return_tensors="pt")
        x = mel.input_features.to(models.device, models.dtype)
        states = models.whisper_encoder(x, output_hidden_states=True).hidden_states
        steps = math.ceil(len(chunk) * STEPS_PER_S / RATE)
        parts.append(torch.stack(states, dim=2)[0, :steps])
    return torch.cat(parts, dim=0)


def frame_features(states: torch.Tensor, frames: int, fps: int) -> torch.Tensor:
    """[frames, 50, dim] audio prompts, positional encoding included."""
    p = STEPS_PER_S // fps
    need = math.floor((frames - 1) * STEPS_PER_S / fps) + STEPS_PER_FRAME if frames else 0
    left = torch.zeros_like(states[: 1]).expand(p * PAD_LEFT, -1, -1)
    right_len = max(p * 3 * PAD_RIGHT, need - (p * PAD_LEFT + len(states)))
    right = torch.zeros_like(states[: 1]).expand(right_len, -1, -1)
    padded = torch.cat([left, states, right], dim=0)
    starts = [math.floor(i * STEPS_PER_S / fps) for i in range(frames)]
    clips = torch.stack([padded[s : s + STEPS_PER_FRAME] for s in starts])  # [F, 10, L, D]
    prompts = clips.reshape(frames, -1, clips.shape[-1])  # [F, 10 * L, D]
    pe = positional_encoding(prompts.shape[1], prompts.shape[2]).to(prompts)
    return prompts + pe
