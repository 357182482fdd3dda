"""The `edge` speech provider (edge-tts, Microsoft's online voices), which cannot be reached
here. Its network path runs for real through a local HTTP proxy with failure knobs (edge-tts
honours the proxy environment variables): it fails with a retryable error, is tried
`retry_attempts` times, and the chain falls back to espeak, whose speech comes out; a voice
edge-tts cannot name is never sent to it. Past the network, an MP3 as the service sends it
(made here by FFmpeg from espeak's speech) goes through edge's own decode path, sentence by
sentence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from avatarcast.settings import SpeechProvider, SpeechSettings
from avatarcast.speech.base import MAX_PIECE_CHARS, SpeechError, Spoken
from avatarcast.speech.chain import Speech, make_providers
from avatarcast.speech.edge import DECODE_RATE, EdgeSynthesizer
from harness.daemon import rms_windows
from harness.openai_server import RATE as SPEAK_RATE
from harness.openai_server import speak
from harness.services import free_port

SERVICE = "speech.platform.bing.com"
PROXY_PASSWORD = "pr0xy-s3cret-42"
TEXT = "Fall back now."


@dataclass
class Proxy:
    """An HTTP proxy on 127.0.0.1 that never reaches the service: `answer` is what it does
    with each CONNECT ("502": refuses it; "hang up": closes the connection; "silent": says
    nothing until the test ends)."""

    answer: str
    heads: list[bytes] = field(default_factory=list)
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            if self.answer == "502":
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            elif self.answer == "silent":
                await reader.read()  # until the client gives up
        writer.close()
        self._open.discard(writer)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        try:
            yield int(server.sockets[0].getsockname()[1])
        finally:
            for w in list(self._open):
                w.close()
            server.close()
            await server.wait_closed()


def route_through(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """edge-tts (aiohttp with trust_env) goes through the proxy at `port`, with a password."""
    for name in ("no_proxy", "NO_PROXY", "WSS_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("wss_proxy", "https_proxy"):
        monkeypatch.setenv(name, f"http://avatarcast:{PROXY_PASSWORD}@127.0.0.1:{port}")


async def chain_says(providers: list[SpeechProvider], text: str, voice: str | None = None,
                     timeout_s: float = 30.0) -> list[Spoken]:
    settings = SpeechSettings(providers=providers, timeout_s=timeout_s, retry_attempts=2)
    speech = Speech(make_providers(settings, "ffmpeg"), settings, 48_000)
    await speech.start()
    try:
        return [s async for s in speech.synthesize(text, voice)]
    finally:
        await speech.aclose()


def assert_spoken_by_espeak(spoken: list[Spoken], espeak: list[Spoken]) -> None:
    assert [s.text for s in spoken] == [s.text for s in espeak]
    for got, want in zip(spoken, espeak, strict=True):
        assert np.array_equal(got.pcm, want.pcm)  # espeak-ng is deterministic
        assert float(np.abs(got.pcm.astype(np.float32)).max()) > 3000  # speech, not silence


def assert_said_cleanly(caplog: pytest.LogCaptureFixture, why: str) -> None:
    failed = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith("speech provider edge failed")]
    assert len(failed) == 1 and why in failed[0], failed
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text and PROXY_PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("answer", "why", "timeout_s", "connects"),
    [("502", "edge-tts service unreachable (offline?)", 30.0, 2),
     # aiohttp itself asks again once when a connection is dropped unanswered.
     ("hang up", "edge-tts service unreachable (offline?)", 30.0, 4),
     # A service that never answers costs the deadline, no more, and is retried too.
     ("silent", "edge timed out after 1 s", 1.0, 2)],
)
async def test_an_unreachable_service_is_retried_then_espeak_speaks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    answer: str, why: str, timeout_s: float, connects: int,
) -> None:
    espeak = await chain_says(["espeak"], TEXT)
    proxy = Proxy(answer)
    async with proxy.serving() as port:
        route_through(monkeypatch, port)
        caplog.set_level(logging.INFO)
        spoken = await chain_says(["edge", "espeak"], TEXT, timeout_s=timeout_s)
    assert_spoken_by_espeak(spoken, espeak)
    # Retryable: tried retry_attempts (2) times, each a real request for the service, and
    # not again by the chain.
    assert len(proxy.heads) == connects, proxy.heads
    assert all(h.startswith(f"CONNECT {SERVICE}:443 ".encode()) for h in proxy.heads)
    assert all(b"Proxy-Authorization: Basic " in h for h in proxy.heads)
    assert_said_cleanly(caplog, why)


@pytest.mark.parametrize(
    ("route", "why"),
    [("a proxy port nobody listens on", "unreachable (offline?): ClientProxyConnectionError"),
     ("offline, no proxy", "unreachable (offline?): ClientConnectorDNSError")],
)
async def test_a_connection_refused_fails_at_once_and_espeak_speaks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, route: str, why: str
) -> None:
    if route.startswith("offline"):
        for name in ("wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.delenv(name, raising=False)
        with contextlib.suppress(OSError):
            socket.getaddrinfo(SERVICE, 443)
            pytest.skip(f"{SERVICE} resolves here: the real service may answer")
    else:
        route_through(monkeypatch, free_port())
    espeak = await chain_says(["espeak"], TEXT)
    caplog.set_level(logging.INFO)
    # With a 30 s deadline, the refusal itself is the error, not the deadline.
    spoken = await chain_says(["edge", "espeak"], TEXT, timeout_s=30.0)
    assert_spoken_by_espeak(spoken, espeak)
    assert_said_cleanly(caplog, why)


async def test_a_voice_edge_cannot_name_is_never_sent_to_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = Proxy("502")
    async with proxy.serving() as port:
        route_through(monkeypatch, port)
        caplog.set_level(logging.INFO)
        # espeak's voice name is no edge voice: edge is skipped, espeak says it.
        spoken = await chain_says(["edge", "espeak"], TEXT, voice="en-us+f3")
        espeak = await chain_says(["espeak"], TEXT, voice="en-us+f3")
        assert_spoken_by_espeak(spoken, espeak)
        assert "failed" not in caplog.text and PROXY_PASSWORD not in caplog.text
        # A voice no provider has: the reason says so, naming the providers.
        settings = SpeechSettings(providers=["edge", "espeak"])
        speech = Speech(make_providers(settings, "ffmpeg"), settings, 48_000)
        await speech.start()
        try:
            why = await speech.try_voice("nobody")
        finally:
            await speech.aclose()
    assert why == "no provider knows voice 'nobody' (providers: edge, espeak)"
    assert proxy.heads == []  # never sent


def mp3_of(pcm: np.ndarray) -> bytes:
    """`pcm` (16-bit mono at 24 kHz) as the service sends it: audio-24khz-48kbitrate-mono-mp3."""
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "s16le", "-ar", str(SPEAK_RATE), "-ac", "1", "-i",
         "pipe:0", "-c:a", "libmp3lame", "-b:a", "48k", "-f", "mp3", "pipe:1"],
        input=pcm.astype("<i2").tobytes(), capture_output=True, check=True, timeout=60,
    ).stdout


class RecordedService(EdgeSynthesizer):
    """edge with the service's answer made here (the service cannot be reached): the MP3 of
    espeak saying what was asked, or `garbage`; what was asked is kept."""

    def __init__(self, garbage: bytes | None = None) -> None:
        super().__init__("en-US-GuyNeural", "ffmpeg", timeout_s=30)
        self.garbage = garbage
        self.asked: list[tuple[str, str]] = []
        self.sent: dict[str, np.ndarray] = {}

    async def _mp3(self, text: str, voice: str) -> bytes:
        self.asked.append((text, voice))
        if self.garbage is not None:
            return self.garbage
        self.sent[text] = await asyncio.to_thread(speak, text)
        return await asyncio.to_thread(mp3_of, self.sent[text])


async def test_the_services_mp3_is_decoded_sentence_by_sentence() -> None:
    run_on = ", ".join(["and this clause goes on for a while"] * 12) + "."
    text = f"Hello there. {run_on}"
    edge = RecordedService()
    chunks = [c async for c in edge.synthesize(text, None)]
    asked = [t for t, _ in edge.asked]
    # One request per piece: the sentence, then the run-on one cut at its clauses.
    assert asked[0] == "Hello there." and len(asked) >= 3
    assert all(len(t) <= MAX_PIECE_CHARS for t in asked)
    assert " ".join(asked[1:]) == run_on
    assert {v for _, v in edge.asked} == {"en-US-GuyNeural"}  # the configured voice
    assert [c.text for c in chunks] == asked
    assert [c.last for c in chunks] == [False] * (len(asked) - 1) + [True]
    for c in chunks:
        assert c.sample_rate == DECODE_RATE and c.samples.dtype == np.int16
        sent = edge.sent[str(c.text)]
        # MP3 pads its frames: a few tens of milliseconds more, never less.
        assert 0 <= len(c.samples) - len(sent) < DECODE_RATE // 10, (len(c.samples), len(sent))
        # The same speech: its loudness over time follows what was encoded.
        got = rms_windows(c.samples.astype(np.float32), DECODE_RATE, 0.02)
        want = rms_windows(sent.astype(np.float32), DECODE_RATE, 0.02)
        n = len(want)  # the MP3 starts a few windows late: the best of the first lags
        best = max(float(np.corrcoef(got[k : k + n], want)[0, 1])
                   for k in range(min(4, len(got) - n + 1)))
        assert best > 0.95, best

    # A message's voice is the one asked for.
    edge.asked.clear()
    [c async for c in edge.synthesize("Hi.", "en-GB-SoniaNeural")]
    assert edge.asked == [("Hi.", "en-GB-SoniaNeural")]


async def test_audio_that_is_no_mp3_is_a_clear_error_that_is_not_retried() -> None:
    edge = RecordedService(garbage=b"<html>captive portal</html>" * 40)
    with pytest.raises(SpeechError, match="cannot decode edge-tts audio") as info:
        [c async for c in edge.synthesize(TEXT, None)]
    assert not info.value.retryable
