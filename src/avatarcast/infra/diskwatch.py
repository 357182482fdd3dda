"""The disks a channel writes to: their free space watched, and the files it writes by pattern
kept within their retention, every CHECK_S.

Below `min_free_mb` on any of them: one warning, `low` names it (/healthz shows it), and
`on_low(True)` (the recording pauses); back above: one line, `on_low(False)`. The stream is
never stopped for it. Owned by the event loop; each check runs on a thread of its own (a slow
or hung disk never holds the loop), and `on_low` is called there."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .retention import Retention

log = logging.getLogger(__name__)

CHECK_S = 2.0
HUNG_S = 30.0  # a check (statvfs, retention) taking longer: said in `low`


def _existing(path: Path) -> Path:
    """The nearest folder of `path` that exists (a recording's folder may not, yet)."""
    for p in (path, *path.parents):
        if p.is_dir():
            return p
    return Path(".")


def free_mb(path: Path) -> float:
    st = os.statvfs(_existing(path))
    return st.f_bavail * st.f_frsize / 1e6


class DiskWatch:
    def __init__(self, dirs: dict[str, Path], min_free_mb: int,
                 retentions: Iterable[Retention] = (),
                 on_low: Callable[[bool], None] = lambda low: None) -> None:
        self._dirs = dirs  # what it is (for people) -> a folder on that disk
        self._min = min_free_mb
        self._retentions = [r for r in retentions if r.enabled]
        self._on_low = on_low
        self.low: str | None = None  # what is short of space, in a line; None: all fine
        self.hung: str | None = None  # a check that has not answered, in a line
        self.hung_s = HUNG_S

    @property
    def state(self) -> str | None:
        """What /healthz shows: what is short of space, or a check that hangs; None: fine."""
        return self.hung or self.low

    @property
    def needed(self) -> bool:
        return bool(self._retentions) or (self._min > 0 and bool(self._dirs))

    def check(self) -> None:
        """One round: retention first (it frees space), then the free space."""
        for r in self._retentions:
            r.prune()
        if self._min <= 0:
            return
        short = []
        for what, folder in self._dirs.items():
            try:
                free = free_mb(folder)
            except OSError as exc:
                short.append(f"{what} ({folder}): cannot stat: {exc}")
                continue
            if free < self._min:
                short.append(f"{what} ({folder}): {free:.0f} MB free, under {self._min} MB")
        low = "; ".join(short) or None
        if low is not None and self.low is None:
            log.warning("disk space low: %s; the recording is paused (the stream goes on)",
                        low)
            self._on_low(True)
        elif low is None and self.low is not None:
            log.info("disk space back above %d MB; the recording resumes", self._min)
            self._on_low(False)
        self.low = low

    async def run(self) -> None:
        while True:
            check = asyncio.ensure_future(asyncio.to_thread(self.check))
            done, _ = await asyncio.wait({check}, timeout=self.hung_s)
            if not done:
                # A disk that hangs (a dead NFS mount) is said, not waited on in silence; the
                # same check is awaited, so no second thread piles up behind it.
                self.hung = f"the disk check has not answered for {self.hung_s:g} s"
                log.warning("%s (a hung disk?)", self.hung)
            await check  # its error, if any, ends the task: the daemon notices
            self.hung = None
            await asyncio.sleep(CHECK_S)
