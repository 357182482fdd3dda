"""espeak-ng: formant synthesis, tiny and instant; a robust last resort."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import numpy as np

from .base import SpeechChunk, SpeechError, pieces_of


class EspeakSynthesizer:
    name = "espeak"

    def __init__(self, executable: str, default_voice: str, timeout_s: float) -> None:
        self._exe = executable
        self._voice = default_voice
        self._timeout = timeout_s

    async def load(self) -> None:
        await self._run("ready", self._voice)

    async def _run(self, text: str, voice: str) -> SpeechChunk:
        try:
            proc = await asyncio.create_subprocess_exec(
                self._exe, "-v", voice, "--stdout", "--", text,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise SpeechError(f"{self._exe} is not installed", retryable=False) from None
        try:
            async with asyncio.timeout(self._timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SpeechError("espeak-ng timed out", retryable=True) from None
        if proc.returncode != 0 or len(out) < 44:
            msg = err.decode(errors="replace").strip() or f"exit {proc.returncode}"
            if "voice does not exist" in msg:
                raise SpeechError(f"unknown espeak voice {voice!r}", retryable=False)
            raise SpeechError(f"espeak-ng failed: {msg}", retryable=True)
        # espeak streams its WAV with placeholder sizes: read the rate, take the rest as data.
        (rate,) = struct.unpack_from("<I", out, 24)
        if out[:4] != b"RIFF" or out[8:12] != b"WAVE" or not 8000 <= rate <= 192_000:
            raise SpeechError(f"{self._exe} returned no WAV audio", retryable=True)
        samples = np.frombuffer(out, dtype=np.int16, offset=44, count=(len(out) - 44) // 2)
        return SpeechChunk(samples.copy(), rate)

    async def synthesize(self, text: str, voice: str | None) -> AsyncIterator[SpeechChunk]:
        for sentence, last in pieces_of(text):
            chunk = await self._run(sentence, voice or self._voice)
            chunk.text, chunk.last = sentence, last
            yield chunk

    async def aclose(self) -> None:
        return None
