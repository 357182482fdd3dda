"""The scheduler with the real program, pacer and speech (espeak-ng), and an animator with
failure knobs (a broken talking-face model cannot be had for real here): an animator that
raises, hangs past its timeout, or returns frames of the wrong size or number fails that one
utterance with a reason; the stream keeps its cadence; the next message airs."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avatarcast.app.build import build
from avatarcast.app.status import Figures
from avatarcast.avatar.face.looks import Look, Looks
from avatarcast.avatar.face.mouthtrack import MouthTrack
from avatarcast.avatar.face.service import FaceService
from avatarcast.avatar.face.still import StillAnimator
from avatarcast.avatar.runtime import Avatar
from avatarcast.broker.consumer import Delivery
from avatarcast.broker.messages import ControlMessage, SpeakMessage
from avatarcast.infra.tasks import Tasks
from avatarcast.media.audio import Pcm
from avatarcast.media.frames import Frame
from avatarcast.media.idle import IdleCycle
from avatarcast.onair.pacer import Pacer
from avatarcast.onair.program import Program
from avatarcast.onair.tick import Receipt
from avatarcast.playout import scheduler as scheduler_module
from avatarcast.playout.scheduler import Scheduler
from avatarcast.settings import PlayoutSettings, Settings, SpeechSettings, VideoSettings
from avatarcast.speech.chain import Speech

FPS, RATE, W, H = 30, 48_000, 64, 48


class Knobs(StillAnimator):
    """The still animator (idle frames, in batches of 8), or failing as told."""

    name = "knobs"
    batch = 8

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.release = threading.Event()

    def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[list[Frame]]:
        if self.mode == "raise":
            raise RuntimeError("the model blew up")
        if self.mode == "hang":
            self.release.wait(60)
        frames = [f for b in super().render(audio_16k, cycle_indices, mouth) for f in b]
        if self.mode == "wrong_size":
            frames[len(frames) // 2] = np.zeros((10, 10), np.uint8)
        if self.mode == "too_few":
            frames = frames[:-3]
        for i in range(0, len(frames), self.batch):
            yield frames[i : i + self.batch]


class Sink:
    """The encoder's place: takes every frame and reports it written."""

    generation = 1

    def __init__(self) -> None:
        self.frames = 0
        self.audio: list[Pcm] = []  # each frame's, in the order written

    def submit(self, frame: Frame, audio: Pcm, receipt: Receipt | None = None,
               quiet_after: int = 0) -> bool:
        assert frame.shape == (H * 3 // 2, W)  # nothing of the wrong size reaches the encoder
        self.frames += 1
        self.audio.append(audio.copy())
        if receipt is not None:
            receipt.written()
        return True


@dataclass
class Raw:
    message_id: str
    channel: object = field(default_factory=object)


class FakeBroker:
    def __init__(self) -> None:
        self.settled: dict[str, tuple[str, str]] = {}
        self.changed = asyncio.Event()
        self.ledger: list[str] = []  # ids recorded as handled, and acks, in order

    def _note(self, raw: Raw, how: str, reason: str = "") -> None:
        self.settled[raw.message_id] = (how, reason)
        self.changed.set()

    async def ack(self, raw: Any) -> None:
        self.ledger.append(f"acked {raw.message_id}")
        self._note(raw, "acked")

    async def record_handled(self, msg_id: str) -> bool:
        self.ledger.append(msg_id)
        return True

    async def requeue(self, raw: Any) -> None:
        self._note(raw, "requeued")

    async def dead_letter(self, raw: Any, reason: str) -> bool:
        self._note(raw, "dead", reason)
        return True

    async def purge_speak(self) -> int:
        return 0


@pytest.fixture
def idle() -> IdleCycle:
    return IdleCycle([np.full((H * 3 // 2, W), 40 + 10 * i, np.uint8) for i in range(4)])


async def settle(broker: FakeBroker, msg_id: str, limit_s: float = 20) -> tuple[str, str]:
    async with asyncio.timeout(limit_s):
        while msg_id not in broker.settled:
            broker.changed.clear()
            await broker.changed.wait()
    return broker.settled[msg_id]


@dataclass
class Rig:
    """The scheduler on air: real program, pacer and speech, a given animator."""

    program: Program
    scheduler: Scheduler
    pacer: Pacer
    broker: FakeBroker
    speech: Speech
    figures: Figures
    sink: Sink

    async def say(self, msg_id: str, text: str, interrupt: bool = False) -> None:
        await self.scheduler.on_speak(Delivery(
            SpeakMessage(id=msg_id, text=text, interrupt=interrupt),
            Raw(msg_id)))  # type: ignore[arg-type]

    def status(self) -> dict[str, Any]:
        return self.figures.status(last_error=None, started_at=0.0)

    def aired_audio(self, msg_id: str) -> Pcm:
        """What the encoder was given while `msg_id` was on air."""
        entry = next(e for e in self.scheduler.history if e["id"] == msg_id)
        return np.concatenate(self.sink.audio[entry["stream_first"]:entry["stream_last"] + 1])


@contextlib.asynccontextmanager
async def on_air(tmp_path: Path, idle: IdleCycle, animator: StillAnimator,
                 timeout_s: float) -> AsyncIterator[Rig]:
    """The channel as the daemon builds it (app/build.py), with a fake broker and sink."""
    settings = Settings(
        state_dir=tmp_path, video=VideoSettings(width=W, height=64, fps=FPS),
        playout=PlayoutSettings(crossfade_frames=2, gap_ms=100, lead_frames=2),
        speech=SpeechSettings(providers=["espeak"]),
    )
    face = FaceService(animator, timeout_s=timeout_s)
    await face.start(Avatar(idle))
    looks = Looks(settings, Look(animator.name, None, Avatar(idle), face))
    broker = FakeBroker()
    tasks = Tasks()
    sink = Sink()
    ch = build(settings, looks=looks, tasks=tasks, status=dict, broker=broker, sink=sink)
    await ch.speech.start()
    ch.program.encoder_up(True)
    ch.pacer.start()
    worker = asyncio.create_task(ch.scheduler.run())
    ch.scheduler.speech_ready.set()
    try:
        yield Rig(ch.program, ch.scheduler, ch.pacer, broker, ch.speech, ch.figures, sink)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        ch.pacer.stop()
        await tasks.aclose()
        await face.aclose()
        await ch.speech.aclose()


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("raise", "the model blew up"), ("hang", "rendered nothing for 1 s"),
     ("wrong_size", "frame of (10, 10) uint8"), ("too_few", "frames for")],
)
async def test_a_failing_animator_fails_one_utterance_not_the_stream(
    tmp_path: Path, idle: IdleCycle, mode: str, reason: str
) -> None:
    knobs = Knobs()
    async with on_air(tmp_path, idle, knobs, timeout_s=1.0) as rig:
        try:
            knobs.mode = mode
            await rig.say("bad", "Fail, please.")
            how, why = await settle(rig.broker, "bad")
            assert how == "dead" and reason in why, why
            knobs.mode = "ok"
            await rig.say("good", "Now it works.")
            assert (await settle(rig.broker, "good"))[0] == "acked"
            assert rig.scheduler.history[-1]["outcome"] == "aired"
            assert rig.pacer.running and rig.pacer.frames_dropped == 0
            # Each id is in the fleet's ledger before its message is settled: the aired one
            # before its ack, the dead-lettered one once its copy is confirmed.
            assert rig.broker.ledger == ["bad", "good", "acked good"]
        finally:
            knobs.release.set()


class Counting(Knobs):
    """Knobs that count the pieces of speech they are asked to render."""

    def __init__(self) -> None:
        super().__init__()
        self.renders = 0

    def render(
        self, audio_16k: Pcm, cycle_indices: Sequence[int], mouth: MouthTrack
    ) -> Iterator[list[Frame]]:
        self.renders += 1
        return super().render(audio_16k, cycle_indices, mouth)


async def test_a_channel_gone_off_air_gives_back_what_it_held_and_renders_nothing_again(
    tmp_path: Path, idle: IdleCycle
) -> None:
    """A fleet worker's channel whose lease lapsed: its pacer stops for good, its encoder dies
    with it. Shutting down (as Daemon.shutdown does), the text on air goes back to the queue at
    once, for the channel's new owner; the channel does not render it again."""
    animator = Counting()
    async with on_air(tmp_path, idle, animator, timeout_s=5.0) as rig:
        await rig.say("m1", "A text long enough to be on air when the lease lapses. " * 3)
        for _ in range(1000):  # (20 s at most)
            if rig.program.on_air is not None:
                break
            await asyncio.sleep(0.02)
        assert rig.program.on_air is not None
        rig.pacer.stop()  # no tick comes again
        rig.program.encoder_up(False)
        rig.scheduler.requeue_waiting()
        rig.scheduler.requeue_all()
        rig.program.carry_out()
        assert await settle(rig.broker, "m1", limit_s=5) == ("requeued", "")
        rendered = animator.renders
        await asyncio.sleep(1.0)
        assert animator.renders == rendered and rig.scheduler.rendering is None
        assert rig.scheduler.inflight == 0


async def test_an_interrupt_is_synthesized_after_its_cut_went_to_the_encoder(
    tmp_path: Path, idle: IdleCycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No bound to fall back on: the new text airs only if the program says its cut went out.
    monkeypatch.setattr(scheduler_module, "CUT_WAIT_S", 600.0)
    async with on_air(tmp_path, idle, StillAnimator(), timeout_s=5.0) as rig:
        # The tick the program was at when each text's synthesis began.
        began: dict[str, int] = {}
        synthesize = rig.speech.synthesize

        def noting(text: str, voice: str | None) -> Any:
            began[text] = rig.program.tick_no
            return synthesize(text, voice)

        rig.speech.synthesize = noting  # type: ignore[method-assign]
        aired = asyncio.Event()
        rig.scheduler.lifecycle.subscribe(
            lambda event: aired.set() if event.name == "on_air" else None)
        long = "This sentence goes on for a good while, so that it is on air when cut. " * 3
        await rig.say("old", long)
        async with asyncio.timeout(20):
            await aired.wait()
        await asyncio.sleep(0.3)
        await rig.say("new", "Breaking news.", interrupt=True)
        assert (await settle(rig.broker, "new"))[0] == "acked"
        old = next(e for e in rig.scheduler.history if e["id"] == "old")
        assert old["outcome"] == "interrupted"
        assert began["Breaking news."] >= old["ended_at"] + 1  # after the cut's tick went out


def pitch_hz(pcm: Pcm, rate: int = RATE) -> float:
    """The median fundamental of the voiced 40 ms windows (autocorrelation peak, 60-400 Hz)."""
    x = pcm.astype(np.float64) / 32768
    n = int(0.04 * rate)
    found = []
    for i in range(0, len(x) - n, n // 2):
        w = x[i : i + n] - x[i : i + n].mean()
        if np.sqrt(np.mean(w**2)) < 0.02:
            continue
        ac = np.correlate(w, w, "full")[n - 1 :]
        lo, hi = rate // 400, rate // 60
        found.append(rate / (lo + int(np.argmax(ac[lo:hi]))))
    assert len(found) > 10, "hardly any speech aired"
    return float(np.median(found))


async def test_a_voice_set_by_control_speaks_the_next_text(
    tmp_path: Path, idle: IdleCycle
) -> None:
    """`avatarcast control set --voice en-us+f3`, then `--reset voice`: the status names the
    voice, and the texts after each air (acked) in it: espeak's female variant an octave
    above its default voice."""
    text = "The weather today is calm and bright, with a light breeze."
    async with on_air(tmp_path, idle, StillAnimator(), timeout_s=5.0) as rig:
        assert rig.status()["voice"] is None  # each provider's configured voice (en-us)
        await rig.say("before", text)
        assert (await settle(rig.broker, "before"))[0] == "acked"
        for msg_id, voice in (("after", "en-us+f3"), ("again", None)):
            msg = ControlMessage.model_validate({"command": "set", "voice": voice})
            assert await rig.scheduler.on_control(msg) is None
            assert rig.status()["voice"] == voice
            await rig.say(msg_id, text)
            assert (await settle(rig.broker, msg_id))[0] == "acked"
        outcomes = {e["id"]: e["outcome"] for e in rig.scheduler.history}
        assert outcomes == {"before": "aired", "after": "aired", "again": "aired"}
        before, after, again = (pitch_hz(rig.aired_audio(i)) for i in ("before", "after", "again"))
    assert after > 1.6 * before, (before, after)
    assert abs(again - before) < 0.1 * before, (before, again)
