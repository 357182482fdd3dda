"""espeak-ng: formant synthesis, tiny and instant; a robust last resort."""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator

import numpy as np

from .base import SpeechChunk, SpeechError, pieces_of

_OTHER_LANGUAGE = re.compile(r"\((\S+) \d+\)")  # "(zh-cmn 5)" in the last column


def voice_names(listing: str) -> set[str]:
    """Every name `espeak-ng -v` takes for the voices of `espeak-ng --voices`: the language,
    the voice's name, its file and the file's last part, its other languages; lower-cased."""
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            _, language, _, name, file = cols[:5]
            names |= {language, name, file, file.rpartition("/")[2],
                      *_OTHER_LANGUAGE.findall(line)}
    return {n.lower() for n in names}


def variant_names(listing: str) -> set[str]:
    """The variants of `espeak-ng --voices=variant`, by file name ("f3" of "!v/f3"), which
    espeak-ng matches with their case."""
    return {cols[4].rpartition("/")[2] for line in listing.splitlines()[1:]
            if len(cols := line.split()) >= 5}


class EspeakSynthesizer:
    name = "espeak"

    def __init__(self, executable: str, default_voice: str, timeout_s: float) -> None:
        self._exe = executable
        self._voice = default_voice
        self._timeout = timeout_s
        self._voices: set[str] = set()  # lower-cased: espeak-ng ignores the case of these
        self._variants: set[str] = set()

    async def load(self) -> None:
        await self._run("ready", self._voice)
        voices = (await self._exec("--voices"))[0]
        variants = (await self._exec("--voices=variant"))[0]
        self._voices = voice_names(voices.decode(errors="replace"))
        self._variants = variant_names(variants.decode(errors="replace"))

    def knows(self, voice: str) -> bool:
        """A voice espeak-ng lists, by any of its names, with one of its variants after a
        "+". Only those: given a name it does not have, espeak-ng guesses one and speaks."""
        base, plus, variant = voice.partition("+")
        return voice == self._voice or (
            base.lower() in self._voices and (not plus or variant in self._variants))

    async def _exec(self, *args: str) -> tuple[bytes, bytes, int | None]:
        """(stdout, stderr, exit code) of espeak-ng with `args`, within the deadline."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self._exe, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise SpeechError(f"{self._exe} is not installed", retryable=False) from None
        try:
            async with asyncio.timeout(self._timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SpeechError("espeak-ng timed out", retryable=True) from None
        return out, err, proc.returncode

    async def _run(self, text: str, voice: str) -> SpeechChunk:
        out, err, code = await self._exec("-v", voice, "--stdout", "--", text)
        if code != 0 or len(out) < 44:
            msg = err.decode(errors="replace").strip() or f"exit {code}"
            if "voice does not exist" in msg:
                raise SpeechError(f"unknown espeak voice {voice!r}", retryable=False)
            raise SpeechError(f"espeak-ng failed: {msg}", retryable=True)
        # espeak streams its WAV with placeholder sizes: read the rate, take the rest as data.
        (rate,) = struct.unpack_from("<I", out, 24)
        if out[:4] != b"RIFF" or out[8:12] != b"WAVE" or not 8000 <= rate <= 192_000:
            raise SpeechError(f"{self._exe} returned no WAV audio", retryable=True)
        samples = np.frombuffer(out, dtype=np.int16, offset=44, count=(len(out) - 44) // 2)
        return SpeechChunk(samples.copy(), rate)

    async def synthesize(self, text: str, voice: str | None) -> AsyncIterator[SpeechChunk]:
        for sentence, last in pieces_of(text):
            chunk = await self._run(sentence, voice or self._voice)
            chunk.text, chunk.last = sentence, last
            yield chunk

    async def aclose(self) -> None:
        return None
