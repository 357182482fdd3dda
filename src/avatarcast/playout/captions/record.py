"""What aired, on file, on the stream's clock (seconds from the start of the encoder run, which
is the timestamp a viewer's player or a recording of that run shows):

* JSON lines, one per aired message: its id, run, first frame, and every word and phone with
  its start and end;
* WebVTT, one cue per caption line; a new file for each encoder run (named as recordings are),
  since each run's timestamps start again at zero.

A file over `file_max_bytes` is closed and a new one begun: the transcript is renamed to
NAME.YYYYmmdd-HHMMSS.EXT (its path always holds the newest lines), a WebVTT file's successor is
named as recordings are. Their retention is the disk watch's (infra/diskwatch.py).

Owned by the event loop; a failure to write is logged once per file and never stops the air.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ...avatar.face.visemes import VISEMES
from ...onair.ffmpeg_args import record_file
from .words import Script, caption_lines

log = logging.getLogger(__name__)


def vtt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


class AirRecord:
    def __init__(self, *, transcript: Path | None, vtt: Path | None, sample_rate: int,
                 fps: int, max_chars: int, file_max_bytes: int = 100_000_000) -> None:
        self._transcript_path = transcript
        self._max_bytes = file_max_bytes
        self._vtt_pattern = vtt
        self._rate = sample_rate
        self._fps = fps
        self._max_chars = max_chars
        self._vtt: Path | None = None
        self._vtt_run: int | None = None
        self._failed: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self._transcript_path is not None or self._vtt_pattern is not None

    def aired(self, message_id: str, run: int, first_frame: int, samples: int,
              script: Script) -> None:
        """`samples` of the segment aired from `first_frame` on (all of it, or up to a cut):
        the words and phones that began in them are recorded."""
        start = first_frame / self._fps
        script = Script([p for p in script.phones if p.start < samples],
                        [w for w in script.words if w.start < samples])

        def at(sample: int) -> float:
            return round(start + sample / self._rate, 3)

        if self._transcript_path is not None:
            entry = {
                "id": message_id, "run": run, "frame": first_frame, "fps": self._fps,
                "start_s": round(start, 3),
                "words": [[at(w.start), at(w.end), w.text] for w in script.words],
                "phones": [[at(p.start), at(p.end), VISEMES[p.viseme]] for p in script.phones],
            }
            self._rotate(self._transcript_path)
            self._append(self._transcript_path, json.dumps(entry, ensure_ascii=False) + "\n")
        if self._vtt_pattern is not None and script.words:
            self._cues(run, script, at)

    def _cues(self, run: int, script: Script, at: Callable[[int], float]) -> None:
        path = self._vtt_file(run)
        if path is None:
            return
        lines = caption_lines(script.words, self._max_chars)
        cues = []
        for i, line in enumerate(lines):
            end = line[-1].end if i + 1 == len(lines) else min(
                lines[i + 1][0].start, line[-1].end + self._rate)
            text = " ".join(w.text for w in line).replace("-->", "->")
            cues.append(f"{vtt_time(at(line[0].start))} --> {vtt_time(at(end))}\n{text}\n\n")
        self._append(path, "".join(cues))

    def _vtt_file(self, run: int) -> Path | None:
        """This run's WebVTT file, begun (named as recordings are) at its first cue."""
        if self._vtt is not None and self._vtt_run == run and not self._full(self._vtt):
            return self._vtt
        assert self._vtt_pattern is not None
        try:
            path = Path(record_file(self._vtt_pattern))
            path.write_text("WEBVTT\n\n", encoding="utf-8")
        except OSError as exc:
            self._once(str(self._vtt_pattern), exc)
            return None
        self._vtt, self._vtt_run = path, run
        log.info("captions of encoder run %d go to %s", run, path)
        return path

    def _full(self, path: Path) -> bool:
        try:
            return path.stat().st_size >= self._max_bytes
        except OSError:
            return False

    def _rotate(self, path: Path) -> None:
        """A full transcript is renamed NAME.YYYYmmdd-HHMMSS.EXT; the next line begins anew."""
        if not self._full(path):
            return
        try:
            done = record_file(path.with_name(f"{path.stem}.%Y%m%d-%H%M%S{path.suffix}"))
            path.replace(done)
        except OSError as exc:
            self._once(str(path), exc)
            return
        log.info("transcript %s full (%d bytes): continued after %s", path, self._max_bytes,
                 done)

    def _append(self, path: Path, text: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            self._once(str(path), exc)

    def _once(self, what: str, exc: OSError) -> None:
        if what not in self._failed:
            self._failed.add(what)
            log.error("cannot write %s: %s (airing goes on)", what, exc)
