"""What an item of the run of show says, and the show's memory: the words aired lately (to
avoid saying them again within no_repeat_s), each folder's next script and the idle rotation's
next item, kept in the state directory so a restart goes on where it was."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from ...broker.messages import MAX_TEXT_CHARS
from ...infra.files import write_atomic
from ..chat.moderation import words
from .schedule import Item, Loaded

log = logging.getLogger(__name__)


def fingerprint(text: str) -> str:
    """The same for the same words, whatever their case, accents or punctuation."""
    return hashlib.sha256(" ".join(words(text)).encode()).hexdigest()[:32]


def scripts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.txt") if p.is_file())


def read_text(path: Path) -> str:
    """A script's text, whitespace made plain; ValueError for one that cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    text = "\n\n".join(" ".join(p.split()) for p in text.split("\n\n") if p.strip())
    if not text:
        raise ValueError(f"{path}: empty")
    return text


def parts(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """A long script as texts of at most `limit` characters, cut between paragraphs, else
    between sentences, else between words."""
    out: list[str] = []
    for para in text.split("\n\n"):
        pieces = [para] if len(para) <= limit else _split(para, limit)
        for piece in pieces:
            if out and len(out[-1]) + 2 + len(piece) <= limit:
                out[-1] += "\n\n" + piece
            else:
                out.append(piece)
    return out


def _split(para: str, limit: int) -> list[str]:
    out: list[str] = []
    for sentence in para.replace(". ", ".\n").split("\n"):
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            out.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        if out and len(out[-1]) + 1 + len(sentence) <= limit:
            out[-1] += " " + sentence
        elif sentence:
            out.append(sentence)
    return out


class Memory:
    """Bounded by the window: fingerprints older than no_repeat_s are forgotten."""

    def __init__(self, path: Path, no_repeat_s: float) -> None:
        self._path = path
        self._window = no_repeat_s
        self.aired: dict[str, float] = {}
        self.folder_next: dict[str, int] = {}
        self.rotation_next = 0

    def load(self) -> None:
        try:
            raw: Any = json.loads(self._path.read_bytes())
            self.aired = {str(k): float(v) for k, v in raw.get("aired", {}).items()}
            self.folder_next = {str(k): int(v) for k, v in raw.get("folder_next", {}).items()}
            self.rotation_next = int(raw.get("rotation_next", 0))
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("%s: unreadable (%s); the show starts from its first item and may "
                        "repeat what it said lately", self._path, exc)

    def recent(self, text: str, now: float | None = None) -> bool:
        at = self.aired.get(fingerprint(text))
        return at is not None and (now or time.time()) - at < self._window

    def said(self, text: str, now: float | None = None) -> None:
        now = now or time.time()
        self.aired[fingerprint(text)] = now
        self.aired = {k: v for k, v in self.aired.items() if now - v < self._window}
        self.save()

    def save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path, json.dumps({
            "aired": self.aired, "folder_next": self.folder_next,
            "rotation_next": self.rotation_next}).encode())


def candidates(item: Item, loaded: Loaded, memory: Memory) -> list[tuple[str, Path | None]]:
    """What the item may say, in the order to try: its text, or its folder's scripts from the
    next one on (each with its file, for moving the folder's place on)."""
    if item.say is not None:
        return [(item.say, None)]
    if item.topic is not None:
        return [(item.topic, None)]
    if item.file is not None:
        return [(read_text(loaded.path(item.file)), None)]
    assert item.folder is not None
    files = scripts(loaded.path(item.folder))
    if not files:
        raise ValueError(f"{loaded.path(item.folder)}: no .txt scripts")
    start = memory.folder_next.get(item.name, 0) % len(files)
    out: list[tuple[str, Path | None]] = []
    for f in files[start:] + files[:start]:
        try:
            out.append((read_text(f), f))
        except ValueError as exc:
            log.warning("show: %s", exc)
    return out


def moved_on(item: Item, loaded: Loaded, memory: Memory, used: Path | None) -> None:
    """A folder's script aired: the next one is after it."""
    if item.folder is not None and used is not None:
        files = scripts(loaded.path(item.folder))
        if used in files:
            memory.folder_next[item.name] = (files.index(used) + 1) % len(files)
