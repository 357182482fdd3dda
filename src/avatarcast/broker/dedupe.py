"""Ids of messages already handled, kept on disk so a redelivery after a crash or a broker
reconnect is acked without airing twice."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)


class HandledIds:
    def __init__(self, path: Path, capacity: int) -> None:
        self._path = path
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lines = 0

    def load(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._path.exists():
            for line in self._path.read_text(encoding="utf-8").splitlines():
                if line:
                    self._remember(line)
                    self._lines += 1
            log.info("%d handled message ids loaded from %s", len(self._ids), self._path)

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self._ids

    def add(self, msg_id: str) -> None:
        """Remember an id durably, before its message is acked."""
        msg_id = msg_id.replace("\n", " ")
        self._remember(msg_id)
        with self._path.open("a", encoding="utf-8") as f:
            f.write(msg_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._lines += 1
        if self._lines > 2 * self._capacity:
            self._compact()

    def _remember(self, msg_id: str) -> None:
        self._ids[msg_id] = None
        self._ids.move_to_end(msg_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def _compact(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text("".join(i + "\n" for i in self._ids), encoding="utf-8")
        os.replace(tmp, self._path)
        self._lines = len(self._ids)
