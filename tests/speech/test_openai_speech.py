"""The `openai` speech provider against a local server speaking OpenAI's speech API: PCM and
WAV, the key and the message's voice sent, 429 with Retry-After honoured, 5xx retried then
given up so the chain falls back, a wrong key or voice not retried; and end to end, a daemon
whose only voice is the HTTP one airs a message."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from avatarcast.settings import SpeechSettings
from avatarcast.speech.base import SpeechChunk, SpeechError
from avatarcast.speech.chain import Speech, make_providers
from avatarcast.speech.openai_tts import OpenAISynthesizer, decode_wav
from harness.daemon import DaemonProc, QueueNames, decode_audio, publish
from harness.openai_server import KEY, RATE, SpeechServer, speak, wav_bytes

TEXT = "Hello over HTTP. This is the second sentence."


def _provider(server: SpeechServer, fmt: str = "pcm", key: str | None = KEY,
              attempts: int = 2) -> OpenAISynthesizer:
    return OpenAISynthesizer(base_url=server.base_url, api_key=key, model="tts-test",
                             voice="alloy", response_format=fmt, sample_rate=RATE,
                             timeout_s=10, attempts=attempts)


async def _all(p: OpenAISynthesizer, text: str, voice: str | None = None) -> list[SpeechChunk]:
    await p.load()
    try:
        return [c async for c in p.synthesize(text, voice)]
    finally:
        await p.aclose()


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
def test_speech_over_http_sentence_by_sentence(fmt: str) -> None:
    with SpeechServer() as server:
        chunks = asyncio.run(_all(_provider(server, fmt), TEXT, voice="nova"))
    assert [c.text for c in chunks] == ["Hello over HTTP.", "This is the second sentence."]
    for c in chunks:
        assert c.sample_rate == RATE and len(c.samples) > RATE // 2
        assert float(np.abs(c.samples.astype(np.float32)).max()) > 3000  # speech, not silence
    assert [r.body for r in server.requests] == [
        {"model": "tts-test", "input": s, "voice": "nova", "response_format": fmt}
        for s in ("Hello over HTTP.", "This is the second sentence.")]
    assert all(r.auth == f"Bearer {KEY}" for r in server.requests)


def test_a_429_waits_for_retry_after_then_speaks() -> None:
    with SpeechServer(fail=[(429, "1")]) as server:
        chunks = asyncio.run(_all(_provider(server), "Just once."))
    assert len(chunks) == 1 and len(server.requests) == 2
    assert server.requests[1].at - server.requests[0].at >= 0.95  # the server's Retry-After


def test_5xx_is_retried_then_given_up_and_the_chain_falls_back() -> None:
    with SpeechServer(fail=[(503, None)] * 5) as server:
        with pytest.raises(SpeechError, match="gave up after 2 attempts") as info:
            asyncio.run(_all(_provider(server), "Nobody home."))
        assert not info.value.retryable and len(server.requests) == 2
        server.fail = [(500, None)] * 5
        settings = SpeechSettings(providers=["openai", "espeak"],
                                  openai_base_url=server.base_url, openai_api_key=KEY)

        async def chain() -> list[str]:
            speech = Speech(make_providers(settings, "ffmpeg"), settings, 48_000)
            await speech.start()
            try:
                return [s.text or "" async for s in speech.synthesize("Fall back now.", None)]
            finally:
                await speech.aclose()

        assert asyncio.run(chain()) == ["Fall back now."]  # spoken by espeak
        assert len(server.requests) == 4  # two attempts, not retried again by the chain


def test_a_wrong_key_or_voice_is_not_retried_and_says_why() -> None:
    with SpeechServer() as server:
        with pytest.raises(SpeechError, match="refused the API key") as info:
            asyncio.run(_all(_provider(server, key="sk-wrong-key-999"), "Hi."))
        assert "sk-wrong-key-999" not in str(info.value)
        with pytest.raises(SpeechError, match=r"refused voice 'nobody'.*Invalid voice"):
            asyncio.run(_all(_provider(server), "Hi.", voice="nobody"))
        assert len(server.requests) == 2


def test_a_streamed_wav_with_unknown_sizes_is_read() -> None:
    pcm = speak("A wave.")
    samples, rate = decode_wav(wav_bytes(pcm))
    assert rate == RATE and np.array_equal(samples, pcm)
    with pytest.raises(SpeechError, match="no RIFF"):
        decode_wav(b"not a wav at all")


@pytest.mark.services
def test_a_daemon_speaking_over_http(tmp_path: Path, queues: QueueNames) -> None:
    with SpeechServer() as server:
        daemon = DaemonProc(tmp_path, queues, {
            "AVATARCAST_SPEECH__PROVIDERS": json.dumps(["openai"]),
            "AVATARCAST_SPEECH__OPENAI_BASE_URL": server.base_url,
            "AVATARCAST_SPEECH__OPENAI_API_KEY": KEY,
            "AVATARCAST_SPEECH__OPENAI_VOICE": "echo",
        })
        try:
            daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
            publish(queues.speak, {"type": "speak", "id": "http-1", "text": TEXT})
            publish(queues.speak, {"type": "speak", "id": "http-2", "text": "Nova here.",
                                   "voice": "nova"})
            st = daemon.wait_for(lambda s: daemon.outcomes(s) == {"http-1": "aired",
                                                                  "http-2": "aired"},
                                 60, "aired")
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    assert [r.body["voice"] for r in server.requests] == ["echo", "echo", "nova"]
    assert KEY not in daemon.log()
    entry = next(e for e in st["recent"] if e["id"] == "http-1")
    audio = decode_audio(tmp_path / "program.mkv")  # float, 48 kHz
    first, last = entry["stream_first"], entry["stream_last"]
    spoken = audio[first * 48_000 // 30 : last * 48_000 // 30]
    assert float(np.sqrt(np.mean(spoken**2))) > 0.02
