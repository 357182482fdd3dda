"""Which provider speaks a named voice: each provider says which voices it knows (piper: a voice
file; espeak: its own list; openai: the configured list; edge: its voices' name pattern). A
message's voice goes to the first provider of the chain that knows it; while that provider is
down, the next ones speak in their own voices, and the fallback is logged; a voice no provider
knows fails the message with that reason. Against real espeak-ng and piper, and a local server
speaking OpenAI's speech API; last, through the daemon and `avatarcast say --wait`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatarcast.app.cli.exits import EXIT_FAILED
from avatarcast.settings import SpeechProvider, SpeechSettings
from avatarcast.speech.base import SpeechError, Spoken
from avatarcast.speech.chain import Speech, make_providers
from harness.daemon import DaemonProc, QueueNames, drain, publish
from harness.events import EventTap
from harness.openai_server import KEY, SpeechServer

TEXT = "The first sentence. And the second one."
DOWN = [(503, None)] * 50  # the openai server's answers while it is down


def settings_for(providers: list[SpeechProvider], server: SpeechServer | None = None,
                 **more: object) -> SpeechSettings:
    urls = {} if server is None else {"openai_base_url": server.base_url, "openai_api_key": KEY}
    return SpeechSettings.model_validate(
        {"providers": providers, "retry_attempts": 2, **urls, **more})


async def started(settings: SpeechSettings, tmp_path: Path) -> Speech:
    speech = Speech(make_providers(settings, "ffmpeg", tmp_path / "cache"), settings, 48_000)
    await speech.start()
    return speech


async def say_all(speech: Speech, text: str, voice: str | None) -> list[Spoken]:
    return [s async for s in speech.synthesize(text, voice)]


async def espeak_says(tmp_path: Path, text: str, voice: str | None) -> list[Spoken]:
    speech = await started(settings_for(["espeak"]), tmp_path)
    try:
        return await say_all(speech, text, voice)
    finally:
        await speech.aclose()


def same_speech(got: list[Spoken], want: list[Spoken]) -> bool:
    """The same sentences and samples (espeak-ng is deterministic)."""
    return [s.text for s in got] == [s.text for s in want] and all(
        np.array_equal(g.pcm, w.pcm) for g, w in zip(got, want, strict=True))


async def test_each_provider_knows_its_own_voices(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "de_DE-thorsten-medium.onnx").write_bytes(b"")  # a voice file is what piper has
    settings = settings_for(["piper", "espeak", "openai", "edge"], piper_voices_dir=voices,
                            openai_voices=["alloy", "my-clone"])
    piper, espeak, openai, edge = make_providers(settings, "ffmpeg", tmp_path / "cache")
    await espeak.load()  # lists espeak-ng's voices
    names = ["en_US-joe-medium", "de_DE-thorsten-medium", "../de_DE-thorsten-medium",
             "en-us", "EN-US", "en-us+f3", "gmw/en-US", "Afrikaans", "en-us+nobody",
             # espeak-ng itself says this one (in a voice it guesses from "no"), exit 0
             "no-such-voice-7",
             "alloy", "my-clone", "nova", "en-US-GuyNeural", "zh-CN-liaoning-XiaobeiNeural",
             "Microsoft Server Speech Text to Speech Voice (en-GB, SoniaNeural)"]
    known = {p.name: [n for n in names if p.knows(n)] for p in (piper, espeak, openai, edge)}
    assert known == {
        "piper": ["en_US-joe-medium", "de_DE-thorsten-medium"],
        "espeak": ["en-us", "EN-US", "en-us+f3", "gmw/en-US", "Afrikaans"],
        "openai": ["alloy", "my-clone"],
        "edge": ["en-US-GuyNeural", "zh-CN-liaoning-XiaobeiNeural",
                 "Microsoft Server Speech Text to Speech Voice (en-GB, SoniaNeural)"],
    }
    # Each provider's configured voice is one it knows, whatever its list says.
    settings = settings_for(["openai"], openai_voice="onyx", openai_voices=["alloy"])
    assert make_providers(settings, "ffmpeg")[0].knows("onyx")


async def test_a_voice_goes_to_the_first_provider_that_knows_it(tmp_path: Path) -> None:
    with SpeechServer() as server:
        speech = await started(settings_for(["openai", "espeak"], server), tmp_path)
        try:
            # espeak's voice: openai, first in the chain, does not know it and is not asked.
            by_espeak = await say_all(speech, TEXT, "en-us+f3")
            assert server.requests == []
            assert same_speech(by_espeak, await espeak_says(tmp_path, TEXT, "en-us+f3"))
            # openai's voice: openai speaks it.
            await say_all(speech, "Hello.", "nova")
            assert [r.body["voice"] for r in server.requests] == ["nova"]
            # A voice nobody has: the message fails with that reason, nobody is asked, and a
            # `set` to it is refused with the same reason.
            why = "no provider knows voice 'no-such-voice-7' (providers: openai, espeak)"
            with pytest.raises(SpeechError) as info:
                await say_all(speech, "Hello.", "no-such-voice-7")
            assert str(info.value) == why and not info.value.retryable
            assert await speech.try_voice("no-such-voice-7") == why
            assert len(server.requests) == 1
        finally:
            await speech.aclose()


async def test_while_the_provider_of_a_voice_is_down_the_next_speaks_in_its_own_voice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with SpeechServer(fail=list(DOWN)) as server:
        speech = await started(settings_for(["openai", "espeak"], server), tmp_path)
        try:
            spoken = await say_all(speech, TEXT, "alloy")
            # openai was asked for its voice (each of retry_attempts), then espeak spoke the
            # whole text in its own configured voice (not 'alloy', which it does not have).
            assert [r.body["voice"] for r in server.requests] == ["alloy", "alloy"]
            assert same_speech(spoken, await espeak_says(tmp_path, TEXT, None))
            note = spoken[0].fallback
            assert note is not None and note.startswith(
                "voice 'alloy' fell back to espeak's own voice: openai: "), note
            assert "HTTP 503" in note and all(s.fallback is None for s in spoken[1:])
            warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                      and "fell back" in r.getMessage()]
            assert warned == [note]
            # `set` asks more: a voice that cannot speak now is refused, with the reason.
            why = await speech.try_voice("alloy")
            assert why is not None and "openai" in why and "HTTP 503" in why, why
        finally:
            await speech.aclose()


def say(queues: QueueNames, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    env.update(queues.env())
    return subprocess.run([sys.executable, "-m", "avatarcast", "say", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.services
def test_a_voice_whose_provider_is_down_airs_on_the_next_and_one_nobody_has_fails(
    tmp_path: Path, queues: QueueNames
) -> None:
    with SpeechServer(fail=list(DOWN)) as server:
        daemon = DaemonProc(tmp_path / "d", queues, {
            "AVATARCAST_SPEECH__PROVIDERS": json.dumps(["openai", "piper"]),
            "AVATARCAST_SPEECH__OPENAI_BASE_URL": server.base_url,
            "AVATARCAST_SPEECH__OPENAI_API_KEY": KEY,
            "AVATARCAST_SPEECH__RETRY_ATTEMPTS": "2",
            "AVATARCAST_LOG_FORMAT": "json",
        })
        try:
            daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")
            with EventTap(queues.events) as tap:
                publish(queues.speak, {"type": "speak", "id": "alloy-1", "voice": "alloy",
                                       "text": "The hosted voice is down, so piper says this."})
                st = daemon.wait_for(lambda s: "alloy-1" in daemon.outcomes(s), 90, "settled")
                assert daemon.outcomes(st) == {"alloy-1": "aired"}, st["recent"]
                tap.wait_for(lambda ev: any(e["event"] == "finished" for e in ev), 10, "event")
                (finished,) = [e for e in tap.of("alloy-1") if e["event"] == "finished"]
            failed = say(queues, tmp_path, "--wait", "--id", "nobody-1", "--voice",
                         "no-such-voice-7", "Nobody has my voice.")
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    assert [r.body["voice"] for r in server.requests] == ["alloy", "alloy"]
    lines = [json.loads(ln) for ln in daemon.log().splitlines() if ln.startswith("{")]
    fell = [ln["message"] for ln in lines if "fell back" in ln["message"]]
    assert len(fell) == 1, fell
    assert fell[0].startswith("voice 'alloy' fell back to piper's own voice: openai: "), fell
    assert all(ln.get("id") == "alloy-1" for ln in lines if "fell back" in ln["message"])
    assert finished["fallback"] == fell[0]  # the event says who spoke instead

    why = "no provider knows voice 'no-such-voice-7' (providers: openai, piper)"
    assert failed.returncode == EXIT_FAILED, failed.stdout + failed.stderr
    assert why in failed.stderr and "Traceback" not in failed.stderr
    (dead,) = drain(queues.dead)
    assert json.loads(dead.body)["id"] == "nobody-1"
    assert why in str((dead.headers or {}).get("x-avatarcast-reason"))
