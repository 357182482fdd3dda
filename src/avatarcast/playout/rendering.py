"""One message rendered into its segment: speech sentence by sentence, the talking face for
each sentence, streamed into a buffer of at most `buffer_frames` ahead of air while the program
airs the segment. Owned by the event loop; synthesis and animation run on their own threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field

import numpy as np

from ..avatar.alive.gestures import Gestures
from ..avatar.face.base import ANIMATOR_RATE
from ..avatar.face.looks import Look, LookError, Looks
from ..avatar.face.mouthtrack import Timeline
from ..avatar.face.visemes import phones_from_alignment
from ..broker.consumer import Delivery
from ..broker.messages import AskMessage
from ..media.audio import FrameSlicer, Pcm, resample
from ..onair.program import Program
from ..onair.segment import Outcome, Segment
from ..settings import CaptionSettings
from ..speech.base import SpeechError, Spoken
from ..speech.chain import Speech
from ..speech.llm.chat import ChatClient, LLMError
from ..speech.llm.sentences import sentences
from .captions.track import CaptionTrack
from .captions.words import Script, timed_words

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Utterance:
    delivery: Delivery
    received: float = field(default_factory=time.time)
    segment: Segment | None = None
    cancelled: Outcome | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Wall-clock marks (time.time()) on the way to air, for the time-to-air split.
    marks: dict[str, float] = field(default_factory=dict)
    holding: bool = False  # an interrupt holding the program until its segment is queued
    cut_out: asyncio.Event | None = None  # an interrupt's: set once its cut went to the encoder
    script: Script = field(default_factory=Script)  # its words and phones, as rendered
    answer: str = ""  # an ask's answer, as far as it was spoken
    fallback: str | None = None  # its voice's provider was down: which spoke instead

    @property
    def urgent(self) -> bool:
        return self.delivery.message.interrupt

    @property
    def id(self) -> str:
        return self.delivery.message.id


def _waiting_for_text(utt: Utterance, waiting: bool) -> None:
    if utt.segment is not None:
        utt.segment.waiting_for_text = waiting


@dataclass(frozen=True)
class RenderEnd:
    """How a render ended: the outcome to settle its message with now (None: the program
    reports its segment's outcome), and the error it failed with, if it did."""

    outcome: Outcome | None
    error: str | None = None


_PROGRAM_REPORTS = RenderEnd(None)


class Renderer:
    def __init__(
        self, *, program: Program, speech: Speech, looks: Looks, sample_rate: int,
        min_unsealed: int, buffer_frames: int, captions: CaptionSettings,
        llm: ChatClient | None = None,
    ) -> None:
        self._program = program
        self._speech = speech
        self._llm = llm
        self._looks = looks
        self._rate = sample_rate
        self._spf = program.spf
        self._min_unsealed = min_unsealed
        self._buffer_frames = buffer_frames
        self._captions = captions

    async def render(self, utt: Utterance) -> RenderEnd:
        """Render `utt` into its segment; how it ended (the scheduler settles it)."""
        msg = utt.delivery.message
        try:
            look = await self._looks.get(msg.avatar)
        except LookError as exc:
            log.error("%s: %s", msg.id, exc)
            return self._fail(utt, None, str(exc))
        look.busy += 1
        try:
            return await self._render(utt, look)
        finally:
            look.busy -= 1

    async def _render(self, utt: Utterance, look: Look) -> RenderEnd:
        msg = utt.delivery.message
        slicer = FrameSlicer(self._spf)
        timeline = Timeline(self._spf, self._program.fps)
        gestures = Gestures(self._spf, self._program.fps)
        captions = self._caption_track()
        utt.script = Script()
        spoken_samples = 0
        seg: Segment | None = None
        self._program.preparing()
        t0 = time.perf_counter()
        utt.marks["render_started_at"] = time.time()
        try:
            synth_s, waited = 0.0, time.perf_counter()
            async with aclosing(self._speech_of(utt)) as chunks:
                async for spoken in chunks:
                    synth_s += time.perf_counter() - waited
                    if utt.cancelled is not None or (seg is not None and seg.done):
                        break
                    if spoken.fallback and utt.fallback is None:
                        utt.fallback = spoken.fallback  # the first (an ask asks per sentence)
                    self._script(utt.script, spoken, spoken_samples, timeline, captions,
                                 gestures)
                    spoken_samples += len(spoken.pcm)
                    if seg is None:
                        utt.timings["tts_first_s"] = time.perf_counter() - t0
                        utt.marks["tts_first_at"] = time.time()
                        seg = Segment(msg.id, self._program.plan_start(), tag=utt,
                                      urgent=utt.urgent, idle=look.idle,
                                      render_fps=lambda: look.face.render_fps,
                                      rendering_since=time.monotonic(),
                                      min_unsealed=self._min_unsealed,
                                      max_buffered=self._buffer_frames)
                        seg.captions = captions
                        utt.segment = seg
                        self._program.submit(seg, front=utt.urgent, release_hold=utt.holding)
                        utt.holding = False
                    audio = slicer.push(spoken.pcm)
                    if spoken.last:
                        audio += slicer.flush()
                    await self._extend(utt, look, seg, audio, timeline, gestures,
                                       heard_all=spoken.last, timed=bool(spoken.alignment))
                    waited = time.perf_counter()
            if seg is not None and utt.cancelled is None and not seg.done:
                await self._extend(utt, look, seg, slicer.flush(), timeline, gestures)
                if not len(seg.audio):
                    # Chunks that resampled to nothing: a segment of no frames never airs.
                    raise SpeechError("speech produced no audio", retryable=False)
                seg.seal()
                utt.timings["render_s"] = time.perf_counter() - t0
                utt.timings["speech_rtf"] = synth_s / max(spoken_samples / self._rate, 1e-3)
        except (SpeechError, RuntimeError, ValueError, OSError) as exc:
            log.error("%s: rendering failed: %s", msg.id, exc)
            return self._fail(utt, seg, f"rendering failed: {exc}")
        except Exception as exc:
            # A bug, not the message's fault, but the worker must go on with the next one.
            log.exception("%s: rendering failed with an unexpected error", msg.id)
            return self._fail(utt, seg,
                              f"rendering failed (internal error {type(exc).__name__}: {exc})")
        finally:
            self._program.prepared()
        if seg is None:
            if utt.cancelled is not None:
                return RenderEnd(utt.cancelled)
            return RenderEnd(Outcome.FAILED, "speech produced no audio")
        if utt.cancelled is not None:
            self._program.withdraw(seg, utt.cancelled)
        return _PROGRAM_REPORTS  # sealed, or already cut by the program

    def _speech_of(self, utt: Utterance) -> AsyncGenerator[Spoken, None]:
        msg = utt.delivery.message
        if isinstance(msg, AskMessage):
            return self._answer(utt, msg)
        return self._speech.synthesize(msg.text, msg.voice)

    async def _answer(self, utt: Utterance, msg: AskMessage) -> AsyncGenerator[Spoken, None]:
        """The LLM's answer, spoken sentence by sentence as it streams in, after the intro if
        the message has one (the model is asked first, so it thinks while the intro airs). An
        answer that breaks off after it started airing ends there; one that never started
        fails."""
        if self._llm is None:
            raise LLMError("no LLM configured: set AVATARCAST_LLM__BASE_URL", retryable=False)
        spoken = False
        try:
            async with aclosing(sentences(self._llm.answer(msg.prompt, msg.system))) as parts:
                ahead = asyncio.ensure_future(_next(parts)) if msg.intro else None
                try:
                    if msg.intro:
                        async for chunk in self._say(msg.intro, msg.voice):
                            spoken = True
                            yield chunk
                    while True:
                        # Everything said so far is in the segment (each chunk was added
                        # before this generator went on): while the model thinks, it may air.
                        _waiting_for_text(utt, True)
                        try:
                            sentence = await (ahead if ahead is not None else _next(parts))
                        finally:
                            ahead = None
                            _waiting_for_text(utt, False)
                        if sentence is None:
                            break
                        utt.answer = f"{utt.answer} {sentence}".strip()
                        async for chunk in self._say(sentence, msg.voice):
                            spoken = True
                            yield chunk
                finally:
                    if ahead is not None:  # (the intro failed: the model's task goes too)
                        ahead.cancel()
                        await asyncio.gather(ahead, return_exceptions=True)
        except LLMError as exc:
            if not spoken:
                raise
            log.warning("%s: the answer broke off (%s); what was said stands", msg.id, exc)

    async def _say(self, text: str, voice: str | None) -> AsyncGenerator[Spoken, None]:
        """One sentence of an answer: its chunks, none of them the last (the answer's end is
        the LLM's to say)."""
        async with aclosing(self._speech.synthesize(text, voice)) as out:
            async for chunk in out:
                chunk.last = False
                yield chunk

    def _fail(self, utt: Utterance, seg: Segment | None, error: str) -> RenderEnd:
        """Failed: settled now, or withdrawn (the program reports it) when it has a segment."""
        if seg is None:
            return RenderEnd(Outcome.FAILED, error)
        self._program.withdraw(seg, Outcome.FAILED)
        return RenderEnd(None, error)

    def _caption_track(self) -> CaptionTrack:
        """The segment's words as spoken, for the scene's captions layer (drawn whether or
        not it is shown now: it can be shown live)."""
        return CaptionTrack(spf=self._spf, fps=self._program.fps,
                            max_chars=self._captions.max_chars)

    @staticmethod
    def _script(script: Script, spoken: Spoken, at: int, timeline: Timeline,
                captions: CaptionTrack, gestures: Gestures) -> None:
        """The piece's phones (for the mouth and the head) and words (for captions), placed
        at sample `at` of the segment."""
        spans: list[tuple[int, int]] = []
        if spoken.alignment:
            phones, spans = phones_from_alignment(spoken.alignment, at)
            timeline.add(phones)
            gestures.add(phones, spoken.text or "")
            script.phones.extend(phones)
        words = timed_words(spoken.text, spans, at, at + len(spoken.pcm))
        script.words.extend(words)
        captions.add(words)

    async def _extend(
        self, utt: Utterance, look: Look, seg: Segment, audio: list[Pcm], timeline: Timeline,
        gestures: Gestures, *, heard_all: bool = False,
        timed: bool = True,
    ) -> None:
        if not audio:
            return
        first = len(seg.audio)
        idle = look.idle
        indices = [idle.index(seg.planned_start + first + i) for i in range(len(audio))]
        audio_16k = await asyncio.to_thread(
            resample, np.concatenate(audio), self._rate, ANIMATOR_RATE
        )
        mouth = await asyncio.to_thread(timeline.track, first, len(audio), audio_16k,
                                        ANIMATOR_RATE)
        if not timed:  # no phones: the head follows the mouth's openings and pauses
            gestures.add_sound(mouth.jaw, first)
        seg.add_cues(gestures.cues(first, len(audio)))
        seg.add_audio(audio, heard_all=heard_all)
        async with aclosing(look.face.render(audio_16k, indices, mouth)) as batches:
            async for batch in batches:
                if seg.done:  # cut while rendering: the rest would never air
                    break
                seg.add_frames(batch)
                utt.marks.setdefault("frames_first_at", time.time())
                await self._room(utt, seg)

    async def _room(self, utt: Utterance, seg: Segment) -> None:
        """Wait while the segment holds a full buffer of frames not yet on air: memory is
        bounded by seconds of frames, not by the length of the text. The animator's thread
        waits meanwhile (its hand-off holds at most a batch or two). The pacer thread frees
        room a frame at a time; polling every two frames costs less than a wake-up per frame."""
        full = seg.max_buffered
        while seg.frames.held >= full and not seg.done and utt.cancelled is None:  # noqa: ASYNC110
            await asyncio.sleep(2 / self._program.fps)


async def _next(parts: AsyncGenerator[str, None]) -> str | None:
    """The answer's next sentence; None at its end."""
    try:
        return await anext(parts)
    except StopAsyncIteration:
        return None
