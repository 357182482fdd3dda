"""Ids of messages already handled, kept on disk so a redelivery after a crash or a broker
reconnect is acked without airing twice.

One id a line, as a JSON string (ASCII only), so that every id comes back exactly as it was,
whatever it holds (newlines, Unicode line separators). The file is read tolerantly: a line cut
by a crash or a power cut, or bytes that are not text, are skipped with a warning and the file
is rewritten whole, never a failed start. Lines from before the JSON format (the raw id) are
still read."""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path

from ..infra.files import write_atomic

log = logging.getLogger(__name__)


def _line(msg_id: str) -> bytes:
    return json.dumps(msg_id).encode("ascii") + b"\n"


def _parse(raw: bytes) -> str | None:
    """The id a line holds, or None for a line that cannot be one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, str):
            return value
    if "\0" in text:
        return None  # zeros where a power cut left a block unwritten
    return text  # a raw id, as written before the JSON format


class HandledIds:
    def __init__(self, path: Path, capacity: int) -> None:
        self._path = path
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lines = 0

    def load(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return
        *whole, tail = data.split(b"\n")  # the tail: empty, or a line whose write was cut
        skipped = 1 if tail else 0
        for raw in whole:
            msg_id = _parse(raw) if raw else None
            if msg_id is None:
                skipped += 1 if raw else 0
                continue
            self._remember(msg_id)
            self._lines += 1
        log.info("%d handled message ids loaded from %s", len(self._ids), self._path)
        if skipped:
            log.warning("%s: %d unreadable line(s) skipped (a write cut by a crash or a power "
                        "cut); the file is rewritten with the %d ids it held", self._path,
                        skipped, len(self._ids))
            self._compact()

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self._ids

    def add(self, msg_id: str, durable: bool = True) -> None:
        """Remember an id durably (synced to the disk), before its message is acked; or, not
        `durable`, written for the OS to save when it will (a power cut may lose it: for what
        can be decided again)."""
        self._remember(msg_id)
        with self._path.open("ab") as f:
            f.write(_line(msg_id))
            if durable:
                f.flush()
                os.fsync(f.fileno())
        self._lines += 1
        if self._lines > 2 * self._capacity:
            self._compact()

    def absorb(self, ids: list[str]) -> int:
        """Remember ids handled elsewhere (the fleet's ledger: ledger.py), oldest first, with
        the file's; returns how many were new here."""
        new = [i for i in ids if i not in self._ids]
        for msg_id in ids:
            self._remember(msg_id)
        if new:
            with self._path.open("ab") as f:
                f.write(b"".join(_line(i) for i in new))
                f.flush()
                os.fsync(f.fileno())
            self._lines += len(new)
            if self._lines > 2 * self._capacity:
                self._compact()
        return len(new)

    def _remember(self, msg_id: str) -> None:
        self._ids[msg_id] = None
        self._ids.move_to_end(msg_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def _compact(self) -> None:
        write_atomic(self._path, b"".join(_line(i) for i in self._ids))
        self._lines = len(self._ids)
