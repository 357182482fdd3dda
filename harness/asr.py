"""Speech recognition on what a client received, for the tests: PocketSphinx with the US
English model its wheel bundles (offline, on a CPU, about a tenth of real time here), a
recognizer with nothing in common with the daemon's speech. What it heard, as lower-case
words; piper's voice is recognized well enough to find a question's words in it."""

from __future__ import annotations

import subprocess
from pathlib import Path

RATE = 16000


def heard(path: Path) -> list[str]:
    """The words recognized in the audio of `path` (any container FFmpeg reads)."""
    from pocketsphinx import Decoder

    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-ac", "1",
         "-ar", str(RATE), "-"], capture_output=True, check=True, timeout=120).stdout
    decoder = Decoder(samprate=RATE, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr.lower().split() if hyp is not None else []
