"""The speech service: providers tried in order, each retried on retryable errors, output
resampled to the stream's rate."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from ..media.audio import Pcm, resample
from ..settings import SpeechSettings
from .base import SpeechChunk, SpeechError, Spoken, Synthesizer, rescale_alignment
from .level import SpeechLevel
from .onset import trim_lead_in

log = logging.getLogger(__name__)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, SpeechError) and exc.retryable


def make_providers(settings: SpeechSettings, ffmpeg: str,
                   cache_dir: Path | None = None) -> list[Synthesizer]:
    """The configured providers; `cache_dir` keeps what they derive from their models (piper
    voices with phoneme timings), a temporary directory when None."""
    if cache_dir is None:
        cache_dir = Path(tempfile.gettempdir()) / f"avatarcast-voices-{os.getuid()}"
    providers: list[Synthesizer] = []
    for name in settings.providers:
        # Imported lazily: an unused backend costs nothing.
        if name == "piper":
            from .piper import PiperSynthesizer

            providers.append(
                PiperSynthesizer(settings.piper_model, settings.piper_voices_dir, cache_dir))
        elif name == "openai":
            from .openai_tts import OpenAISynthesizer

            key = settings.openai_api_key
            providers.append(OpenAISynthesizer(
                base_url=settings.openai_base_url,
                api_key=key.get_secret_value() if key is not None else None,
                model=settings.openai_model, voice=settings.openai_voice,
                response_format=settings.openai_format,
                sample_rate=settings.openai_sample_rate, timeout_s=settings.timeout_s,
                attempts=settings.retry_attempts, voices=settings.openai_voices))
        elif name == "edge":
            from .edge import EdgeSynthesizer

            providers.append(EdgeSynthesizer(settings.edge_voice, ffmpeg, settings.timeout_s))
        else:
            from .espeak import EspeakSynthesizer

            providers.append(
                EspeakSynthesizer(settings.espeak_path, settings.espeak_voice, settings.timeout_s)
            )
    return providers


class Speech:
    def __init__(
        self, providers: list[Synthesizer], settings: SpeechSettings, sample_rate: int
    ) -> None:
        self._providers = providers
        self._settings = settings
        self._rate = sample_rate
        self._level = (SpeechLevel(settings.loudness_lufs, sample_rate) if settings.normalize
                       else None)
        self._usable: list[Synthesizer] = []
        self.load_errors: dict[str, str] = {}
        # The voice of a message that names none (a `set` control changes it); None: each
        # provider's configured voice.
        self.voice: str | None = None

    async def start(self) -> None:
        """Load every provider; one that cannot load is left out of the chain, and logged."""
        for p in self._providers:
            try:
                await p.load()
            except (SpeechError, OSError, ImportError) as exc:
                self.load_errors[p.name] = str(exc)
                log.error("speech provider %s unavailable: %s", p.name, exc)
                continue
            self._usable.append(p)
            log.info("speech provider %s ready", p.name)
        if not self._usable:
            raise SpeechError(
                "no speech provider could load: " + "; ".join(
                    f"{k}: {v}" for k, v in self.load_errors.items()
                ),
                retryable=False,
            )

    @property
    def providers(self) -> list[str]:
        return [p.name for p in self._usable]

    def _plan(self, voice: str | None, fall_back: bool) -> list[tuple[Synthesizer, str | None]]:
        """The providers to ask, in order, each with the voice to ask it for (None: its own).
        A named voice goes to the first provider that knows it (those before it are skipped);
        the ones after it speak it if they know it too, else (with `fall_back`) their own."""
        if voice is None:
            return [(p, None) for p in self._usable]
        knowing = [p.knows(voice) for p in self._usable]
        if not any(knowing):
            have = ", ".join(self.providers) + "".join(
                f"; {name} did not load" for name in self.load_errors)
            raise SpeechError(f"no provider knows voice {voice!r} (providers: {have})",
                              retryable=False)
        first = knowing.index(True)
        return [(p, voice if knows else None)
                for p, knows in zip(self._usable[first:], knowing[first:], strict=True)
                if knows or fall_back]

    async def synthesize(self, text: str, voice: str | None, *,
                         fall_back: bool = True) -> AsyncGenerator[Spoken, None]:
        """Speech at the output rate, sentence by sentence, in `voice` (None: the one `set`
        chose, else each provider's own). Falls back to the next provider while nothing has
        been produced, in that provider's own voice if it does not know `voice` (said on the
        first chunk, and logged); after the first sentence an error ends the utterance.
        Without `fall_back`, only the providers that know `voice` are asked."""
        voice = voice if voice is not None else self.voice
        errors: list[str] = []
        timeout = self._settings.timeout_s
        for provider, asked in self._plan(voice, fall_back):
            it: AsyncIterator[SpeechChunk] | None = None
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self._settings.retry_attempts),
                    retry=retry_if_exception(_retryable),
                    wait=wait_exponential(multiplier=0.2, max=2.0),
                    reraise=True,
                ):
                    with attempt:
                        it = provider.synthesize(text, asked)
                        first = await self._next(it, timeout, provider.name)
            except SpeechError as exc:
                errors.append(f"{provider.name}: {exc}")
                log.warning("speech provider %s failed: %s", provider.name, exc)
                continue
            assert it is not None
            if first is None:
                errors.append(f"{provider.name}: produced no audio")
                continue
            try:
                # Only the utterance's start: later sentences keep the pause before them.
                key = f"{provider.name}:{asked or ''}"
                spoken = await self._resample(first, key, trim=True)
                if asked != voice:  # the provider that knows the voice failed
                    spoken.fallback = (f"voice {voice!r} fell back to {provider.name}'s own "
                                       "voice: " + "; ".join(errors))
                    log.warning("%s", spoken.fallback)
                yield spoken
                while (chunk := await self._next(it, timeout, provider.name)) is not None:
                    yield await self._resample(chunk, key)
            finally:
                # Closed early (a cut, an interrupt): the provider stops after this sentence.
                if isinstance(it, AsyncGenerator):
                    await it.aclose()
            return
        raise SpeechError("speech failed: " + "; ".join(errors), retryable=False)

    async def try_voice(self, voice: str) -> str | None:
        """Say a word with `voice` itself (no provider's own voice instead): None when a
        provider could, else why none could."""
        try:
            async with aclosing(self.synthesize("Hello.", voice, fall_back=False)) as chunks:
                async for _ in chunks:
                    return None
        except SpeechError as exc:
            return str(exc)
        return "no audio"

    async def _resample(self, chunk: SpeechChunk, voice: str, trim: bool = False) -> Spoken:
        # Off the event loop: a long sentence takes milliseconds to trim, resample and level.
        def work() -> tuple[SpeechChunk, Pcm]:
            c = trim_lead_in(chunk) if trim else chunk
            pcm = resample(c.samples, c.sample_rate, self._rate)
            return c, (self._level.apply(voice, pcm) if self._level is not None else pcm)

        done, pcm = await asyncio.to_thread(work)
        alignment = rescale_alignment(done.alignment, len(pcm)) if done.alignment else None
        return Spoken(pcm, alignment or None, done.text, done.last)

    @staticmethod
    async def _next(
        it: AsyncIterator[SpeechChunk], limit_s: float, name: str
    ) -> SpeechChunk | None:
        try:
            async with asyncio.timeout(limit_s):
                return await anext(it)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise SpeechError(f"{name} timed out after {limit_s:.0f} s", retryable=True) from None

    async def aclose(self) -> None:
        for p in reversed(self._providers):
            await p.aclose()
