"""The renderer, alone: one message into its segment (real espeak speech, the still
animator), its audio and frames in step and sealed, the program told it is preparing and
done; a message that cannot be spoken ends with the reason and no segment, and one cancelled
before its speech ends as cancelled."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from avatarcast.avatar.face.looks import Look, Looks
from avatarcast.avatar.face.service import FaceService
from avatarcast.avatar.face.still import StillAnimator
from avatarcast.avatar.runtime import Avatar
from avatarcast.broker.consumer import Delivery
from avatarcast.broker.messages import AskMessage, SpeakMessage, Utterable
from avatarcast.media.idle import IdleCycle
from avatarcast.onair.program import Program
from avatarcast.onair.segment import Outcome
from avatarcast.onair.state import StateMachine, StreamState
from avatarcast.playout.rendering import Renderer, Utterance
from avatarcast.settings import CaptionSettings, Settings, SpeechSettings
from avatarcast.speech.chain import Speech, make_providers

from .test_scheduler import Raw

FPS, RATE, W, H = 30, 48_000, 64, 48


@pytest.fixture
async def parts() -> AsyncIterator[tuple[Renderer, Program]]:
    idle = IdleCycle([np.full((H * 3 // 2, W), 40 + 10 * i, np.uint8) for i in range(4)])
    face = FaceService(StillAnimator(), timeout_s=5.0)
    await face.start(Avatar(idle))
    looks = Looks(Settings(), Look("still", None, Avatar(idle), face))
    speech = Speech(make_providers(SpeechSettings(providers=["espeak"]), "ffmpeg"),
                    SpeechSettings(), RATE)
    await speech.start()
    program = Program(idle, fps=FPS, spf=RATE // FPS, crossfade_frames=2, gap_frames=3,
                      lead_frames=2, machine=StateMachine())
    program.encoder_up(True)
    renderer = Renderer(program=program, speech=speech, looks=looks, sample_rate=RATE,
                        min_unsealed=0, buffer_frames=10_000, captions=CaptionSettings())
    try:
        yield renderer, program
    finally:
        await face.aclose()
        await speech.aclose()


def _utt(msg: Utterable) -> Utterance:
    return Utterance(Delivery(msg, Raw(msg.id)))  # type: ignore[arg-type]


async def test_a_message_becomes_a_sealed_segment_of_speech_and_frames(
    parts: tuple[Renderer, Program],
) -> None:
    renderer, program = parts
    utt = _utt(SpeakMessage(id="m-1", text="Hello there."))
    end = await renderer.render(utt)
    assert end.outcome is None and end.error is None  # the program reports its outcome
    seg = utt.segment
    assert seg is not None and seg.sealed and seg.id == "m-1" and seg.tag is utt
    assert len(seg.audio) == len(seg.frames) > FPS // 2  # about a second of speech
    assert all(seg.audio[k].size == RATE // FPS for k in range(len(seg.audio)))
    assert any(seg.audio[k].any() for k in range(len(seg.audio)))
    assert [w.text for w in utt.script.words][:2] == ["Hello", "there."]
    assert {"tts_first_s", "render_s", "speech_rtf"} <= set(utt.timings)
    # The program got the segment, and was told it was being prepared and then that it was.
    program.tick(0)
    assert program.pending_count == 1
    assert program.machine.state is StreamState.PROCESSING


async def test_an_ask_without_an_llm_fails_with_the_reason_and_no_segment(
    parts: tuple[Renderer, Program],
) -> None:
    renderer, program = parts
    utt = _utt(AskMessage(id="q-1", prompt="Why is the sky blue?"))
    end = await renderer.render(utt)
    assert end.outcome is Outcome.FAILED
    assert end.error is not None and "no LLM configured" in end.error
    assert utt.segment is None
    program.tick(0)
    assert program.pending_count == 0 and program.machine.state is StreamState.IDLE


async def test_a_message_cancelled_before_its_speech_ends_cancelled(
    parts: tuple[Renderer, Program],
) -> None:
    renderer, _ = parts
    utt = _utt(SpeakMessage(id="m-2", text="You will not hear this."))
    utt.cancelled = Outcome.CLEARED
    end = await renderer.render(utt)
    assert end.outcome is Outcome.CLEARED and end.error is None and utt.segment is None
