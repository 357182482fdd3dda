"""A local server speaking OpenAI's speech API (`POST /v1/audio/speech`), for the tests: real
HTTP, real speech (espeak-ng's, resampled to 24 kHz), streamed in pieces as a server streams
it, with knobs for the failures a hosted voice has (429 with Retry-After, 5xx, a wrong key, an
unknown voice, a slow answer). Runs on a thread of its own, so a daemon process can use it.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import time
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from avatarcast.media.audio import resample

from .services import free_port
from .threadserver import ThreadedApp

RATE = 24_000
KEY = "sk-test-local-0123456789"
VOICES = ("alloy", "echo", "nova")


@dataclass
class Request:
    at: float
    body: dict[str, Any]
    auth: str | None


@dataclass
class SpeechServer(ThreadedApp):
    port: int = field(default_factory=free_port)
    key: str | None = KEY
    fail: list[tuple[int, str | None]] = field(default_factory=list)  # (status, Retry-After)
    delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/audio/speech", self._speech)

    def __enter__(self) -> SpeechServer:
        super().__enter__()
        return self

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"message": message, "type": "invalid_request_error"}},
                                 status=status, headers=headers)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Request(time.time(), body, request.headers.get("Authorization")))
        if self.key is not None and request.headers.get("Authorization") != f"Bearer {self.key}":
            return self._error(401, "Incorrect API key provided.")
        if self.fail:
            status, after = self.fail.pop(0)
            return self._error(status, f"simulated {status}",
                               {"Retry-After": after} if after is not None else None)
        if body.get("voice") not in VOICES:
            return self._error(400, f"Invalid voice {body.get('voice')!r}.")
        if body.get("response_format") not in ("pcm", "wav"):
            return self._error(400, "This server speaks pcm and wav.")
        pcm = await asyncio.to_thread(speak, str(body.get("input", "")))
        data = pcm.tobytes()
        if body["response_format"] == "wav":
            data = wav_bytes(pcm)
        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm"
                                           if body["response_format"] == "pcm" else "audio/wav"})
        await resp.prepare(request)
        await asyncio.sleep(self.delay_s)
        for i in range(0, len(data), 4800):  # in pieces of 0.1 s, as a streaming server sends
            await resp.write(data[i : i + 4800])
            await asyncio.sleep(0.005)
        await resp.write_eof()
        return resp


def speak(text: str) -> np.ndarray:
    """espeak-ng's speech of `text`, as 16-bit mono at 24 kHz."""
    out = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True,
                         check=True, timeout=30).stdout
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return resample(samples, rate, RATE)


def wav_bytes(pcm: np.ndarray) -> bytes:
    """A WAV as a streaming server writes it: the sizes unknown (0xFFFFFFFF)."""
    head = (b"RIFF" + (0xFFFFFFFF).to_bytes(4, "little") + b"WAVE" + b"fmt "
            + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
            + RATE.to_bytes(4, "little") + (RATE * 2).to_bytes(4, "little")
            + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
            + b"data" + (0xFFFFFFFF).to_bytes(4, "little"))
    return head + pcm.astype("<i2").tobytes()
