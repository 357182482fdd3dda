"""Retention of files written by pattern (recordings, transcripts, WebVTT): the files of one
pattern beyond a count or a size are deleted, oldest first; the newest is never deleted (it may
be the one being written)."""

from __future__ import annotations

import glob
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def _name_re(stem: str, suffix: str) -> re.Pattern[str]:
    # strftime fields match anything; then the suffixes this project adds: a segment number
    # (.00001), a timestamp of a rotation (.20250101-120000), a run's ~N.
    stem_re = re.sub(r"%.", ".+", re.escape(stem))
    return re.compile(rf"{stem_re}(\.\d{{5,}}|\.\d{{8}}-\d{{6}})?(~\d+)?{re.escape(suffix)}")


def files_of(pattern: Path) -> list[Path]:
    """The files written by `pattern`, oldest first (by modification time)."""
    name = _name_re(pattern.stem, pattern.suffix)
    found: list[tuple[float, Path]] = []
    for folder in glob.glob(re.sub(r"%.", "*", glob.escape(str(pattern.parent)))):
        try:
            for p in Path(folder).iterdir():
                if name.fullmatch(p.name) and p.is_file():
                    found.append((p.stat().st_mtime, p))
        except OSError:
            continue
    return [p for _, p in sorted(found)]


@dataclass
class Retention:
    """Keep at most `keep_files` files (0: any number) and `keep_bytes` bytes (0: any size)."""

    pattern: Path
    keep_files: int = 0
    keep_bytes: int = 0
    _failed: set[Path] = field(default_factory=set)

    @property
    def enabled(self) -> bool:
        return self.keep_files > 0 or self.keep_bytes > 0

    def prune(self) -> list[Path]:
        """Delete the oldest files beyond the bounds; the ones deleted."""
        if not self.enabled:
            return []
        files = files_of(self.pattern)
        kept, total, gone = 0, 0, []
        for p in reversed(files):  # newest first
            try:
                size = p.stat().st_size
            except OSError:
                continue
            over = (self.keep_files and kept >= self.keep_files) or (
                self.keep_bytes and total + size > self.keep_bytes)
            if kept == 0 or not over:
                kept, total = kept + 1, total + size
                continue
            try:
                p.unlink()
            except OSError as exc:
                if p not in self._failed:
                    self._failed.add(p)
                    log.warning("cannot delete %s: %s", p, exc)
                continue
            gone.append(p)
            log.info("deleted %s (retention of %s)", p, self.pattern)
        return gone
