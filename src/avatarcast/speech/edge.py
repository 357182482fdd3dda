"""edge-tts: Microsoft Edge's online voices. Offline it fails fast with a clear error."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import numpy as np

from .base import SpeechChunk, SpeechError, pieces_of

DECODE_RATE = 24_000
# The voice names edge-tts accepts: "en-US-GuyNeural", or the long form it sends.
_VOICE = re.compile(r"[a-z]{2,}-[A-Z]{2,}-.+Neural|Microsoft Server Speech Text to Speech "
                    r"Voice \(.+,.+\)")


class EdgeSynthesizer:
    name = "edge"

    def __init__(self, default_voice: str, ffmpeg: str, timeout_s: float) -> None:
        self._voice = default_voice
        self._ffmpeg = ffmpeg
        self._timeout = timeout_s

    async def load(self) -> None:
        import edge_tts  # noqa: F401  (fail at start, not at the first message, if missing)

    def knows(self, voice: str) -> bool:
        """By its name's form: the service's list cannot be had offline."""
        return voice == self._voice or _VOICE.fullmatch(voice) is not None

    async def _mp3(self, text: str, voice: str) -> bytes:
        import aiohttp
        import edge_tts
        from edge_tts import exceptions as edge_exc

        audio = bytearray()
        try:
            async for chunk in edge_tts.Communicate(text, voice).stream():
                if chunk["type"] == "audio":
                    audio += chunk["data"]
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise SpeechError(
                f"edge-tts service unreachable (offline?): {type(exc).__name__}: {exc}",
                retryable=True,
            ) from None
        except edge_exc.NoAudioReceived:
            raise SpeechError(f"edge-tts returned no audio for voice {voice!r}",
                              retryable=False) from None
        except (edge_exc.UnknownResponse, edge_exc.UnexpectedResponse,
                edge_exc.WebSocketError) as exc:
            raise SpeechError(f"edge-tts failed: {exc}", retryable=True) from None
        except ValueError as exc:  # edge_tts rejects malformed voice names with ValueError
            raise SpeechError(f"edge-tts: {exc}", retryable=False) from None
        return bytes(audio)

    async def _decode(self, mp3: bytes) -> SpeechChunk:
        proc = await asyncio.create_subprocess_exec(
            self._ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "mp3", "-i", "pipe:0",
            "-f", "s16le", "-ac", "1", "-ar", str(DECODE_RATE), "pipe:1",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(mp3)
        if proc.returncode != 0:
            raise SpeechError(f"cannot decode edge-tts audio: {err.decode()[-200:]}",
                              retryable=False)
        return SpeechChunk(np.frombuffer(out, dtype=np.int16).copy(), DECODE_RATE)

    async def synthesize(self, text: str, voice: str | None) -> AsyncIterator[SpeechChunk]:
        for sentence, last in pieces_of(text):
            async with asyncio.timeout(self._timeout):
                mp3 = await self._mp3(sentence, voice or self._voice)
            chunk = await self._decode(mp3)
            chunk.text, chunk.last = sentence, last
            yield chunk

    async def aclose(self) -> None:
        return None
