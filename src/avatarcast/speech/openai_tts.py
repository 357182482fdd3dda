"""Speech from any OpenAI-compatible server: `POST {base_url}/audio/speech` with the model, the
voice and the sentence, answered with PCM (16-bit little-endian mono at `sample_rate`, 24 kHz
for OpenAI) or WAV, read as it streams in.

This provider owns the retries of its HTTP calls (the chain cannot retry a sentence in the
middle of an utterance): a 429 or a 5xx, a timeout or a refused connection is tried again, after
the server's Retry-After when it gives one, up to `attempts` times in all; then it fails without
asking the chain to retry, so the chain falls back to its next provider at once. A 4xx other
than 429 (a wrong key, an unknown voice) is not retried.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator, Iterable
from typing import Any

import numpy as np

from ..infra import httpretry
from ..infra.httpretry import Transient, server_says, with_retries
from .base import SpeechChunk, SpeechError, pieces_of

log = logging.getLogger(__name__)

def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV, including a streamed one whose size fields say 0 or 0xFFFFFFFF."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechError("the speech server's WAV has no RIFF/WAVE header", retryable=False)
    pos, rate, channels, bits = 12, 0, 1, 16
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if kind == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8 : pos + 24])
        elif kind == b"data":
            body = data[pos + 8 :] if size in (0, 0xFFFFFFFF) else data[pos + 8 : pos + 8 + size]
            if bits != 16 or rate <= 0:
                raise SpeechError(f"the speech server's WAV is {bits}-bit at {rate} Hz; only "
                                  "16-bit PCM is read", retryable=False)
            pcm = np.frombuffer(body[: len(body) // (2 * channels) * 2 * channels], "<i2")
            return pcm.reshape(-1, channels)[:, 0].copy(), rate
        pos += 8 + size + (size & 1)
    raise SpeechError("the speech server's WAV has no data chunk", retryable=False)


class OpenAISynthesizer:
    name = "openai"

    def __init__(self, *, base_url: str, api_key: str | None, model: str, voice: str,
                 response_format: str, sample_rate: int, timeout_s: float, attempts: int,
                 voices: Iterable[str] = ()) -> None:
        self._url = base_url.rstrip("/") + "/audio/speech"
        self._key = api_key
        self._model = model
        self._voice = voice
        self._voices = {voice, *voices}
        self._format = response_format
        self._rate = sample_rate
        self._timeout = timeout_s
        self._attempts = attempts
        self._client: Any = None

    async def load(self) -> None:
        import httpx

        self._client = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, connect=5.0))

    def knows(self, voice: str) -> bool:
        """The server's voices are not asked for: the configured list says them."""
        return voice in self._voices

    async def synthesize(self, text: str, voice: str | None) -> AsyncIterator[SpeechChunk]:
        for sentence, last in pieces_of(text):
            samples, rate = await self._speech(sentence, voice or self._voice)
            yield SpeechChunk(samples, rate, text=sentence, last=last)

    async def _speech(self, sentence: str, voice: str) -> tuple[np.ndarray, int]:
        try:
            return await with_retries(lambda: self._request(sentence, voice), self._attempts)
        except Transient as exc:
            raise SpeechError(f"openai speech at {self._url}: {exc} (gave up after "
                              f"{self._attempts} attempts)", retryable=False) from None

    async def _request(self, sentence: str, voice: str) -> tuple[np.ndarray, int]:
        import httpx

        if self._client is None:
            raise SpeechError("openai speech used before load()", retryable=False)
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        body = {"model": self._model, "input": sentence, "voice": voice,
                "response_format": self._format}
        audio = bytearray()
        try:
            async with self._client.stream("POST", self._url, json=body,
                                           headers=headers) as resp:
                if resp.status_code != 200:
                    self._refused(resp.status_code, await resp.aread(),
                                  resp.headers.get("Retry-After"), voice)
                async for block in resp.aiter_bytes():
                    audio += block
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}" if str(exc)
                             else type(exc).__name__) from None
        if self._format == "wav":
            return decode_wav(bytes(audio))
        return np.frombuffer(bytes(audio[: len(audio) // 2 * 2]), "<i2").copy(), self._rate

    def _refused(self, status: int, body: bytes, after: str | None, voice: str) -> None:
        said = server_says(body)
        if status == 429 or status >= 500:
            raise Transient(f"HTTP {status}: {said}", httpretry.retry_after(after))
        if status in (401, 403):
            raise SpeechError(f"openai speech at {self._url}: the server refused the API key "
                              f"(HTTP {status}): {said}", retryable=False)
        raise SpeechError(f"openai speech at {self._url} refused voice {voice!r} / model "
                          f"{self._model!r} (HTTP {status}): {said}", retryable=False)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

