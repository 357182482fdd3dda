"""Messages whose handling died with the process, counted on disk, so a message that keeps
crashing the daemon (or getting it killed: out of memory, a watchdog) is dead-lettered after
a bounded number of tries instead of being redelivered forever.

Only deaths count: an attempt is recorded when the render worker takes a message up and erased
when the message is settled (aired, skipped, failed or requeued at a clean shutdown), or when
the process stops in order with it unsettled (a render that outlived the shutdown's grace, a
fleet's lease lost). Whatever is still recorded when a new process starts died with the
previous one. A redelivery after a
broker reconnect, or a requeue at shutdown, is not counted. Owned by the event loop.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..infra.files import write_atomic

log = logging.getLogger(__name__)


class Attempts:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._died: dict[str, int] = {}  # deaths so far, from earlier processes
        self._open: set[str] = set()  # taken up by this process and not settled yet

    def load(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            self._died = {str(k): int(v) for k, v in dict(data).items()}
        except (ValueError, TypeError) as exc:
            # Losing the counts costs at most a few more tries of a poison message.
            log.warning("ignoring unreadable %s (%s)", self._path, exc)
            self._died = {}
        if self._died:
            log.warning("%d message(s) were being handled when the last process died: %s",
                        len(self._died), ", ".join(sorted(self._died)[:10]))

    def deaths(self, msg_id: str) -> int:
        """How many processes died while handling this message."""
        return self._died.get(msg_id, 0)

    def begin(self, msg_id: str) -> None:
        """The worker takes the message up; if the process dies now, this counts."""
        if msg_id in self._open:
            return
        self._open.add(msg_id)
        self._save()

    def end(self, msg_id: str) -> None:
        """The message is settled: whatever happened to it, it is no longer a suspect."""
        was_open = msg_id in self._open
        self._open.discard(msg_id)
        if self._died.pop(msg_id, None) is not None or was_open:
            self._save()

    def release(self) -> None:
        """An orderly stop (a shutdown, a fleet's lease lost): what this process took up and
        did not settle goes back to the queue with the connection; it did not die with it."""
        if self._open:
            self._open.clear()
            self._save()

    def _save(self) -> None:
        # What the next process will read if this one dies now.
        on_disk = dict(self._died)
        for k in self._open:
            on_disk[k] = on_disk.get(k, 0) + 1
        write_atomic(self._path, json.dumps(on_disk).encode())
