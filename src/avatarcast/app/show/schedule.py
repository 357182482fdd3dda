"""The run of show's file (TOML): the show's settings, and its items, each with what it says
(`say`: a text; `file`: a text file, read when it airs; `folder`: the folder's .txt files in
turn; `topic`: a topic the LLM talks about) and when (`cron`: a crontab line; `every`: an
interval; `idle = true`: in the rotation that fills the channel's silences).

    timezone = "Europe/Lisbon"   # of the cron times (default UTC)
    idle_after_s = 300           # the rotation airs after this long with nothing on air
    no_repeat_s = 3600           # the same words are not aired again within this window...
    rephrase = true              # ...unless the LLM says them anew

    [[item]]
    name = "top of the hour"
    cron = "0 * * * *"
    say = "It is the top of the hour, and this is Avatar Live."
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...broker.messages import MAX_PROMPT_CHARS
from .cron import Cron, CronError, interval_s

SYSTEM = ("You are the host of a live stream, talking to your viewers between their questions. "
          "Speak about what you are given for about half a minute, in short, plain spoken "
          "sentences, without lists, links or markup.")
REPHRASE = ("You are the host of a live stream. Say what you are given again in your own "
            "words, keeping its meaning and about its length, as plain spoken sentences.")
NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"


class ScheduleError(Exception):
    """The file cannot be a run of show; the message names the item and the field."""


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    say: str | None = Field(default=None, min_length=1, max_length=5000)
    file: Path | None = None
    folder: Path | None = None
    topic: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS)
    cron: str | None = None
    every: str | None = None
    idle: bool = False
    voice: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_of_each(self) -> Item:
        what = [k for k in ("say", "file", "folder", "topic") if getattr(self, k) is not None]
        if len(what) != 1:
            raise ValueError("give one of say, file, folder or topic")
        when = [k for k, on in (("cron", self.cron), ("every", self.every),
                                ("idle", self.idle)) if on]
        if len(when) != 1:
            raise ValueError("give one of cron, every or idle = true")
        try:
            if self.cron is not None:
                Cron.parse(self.cron).next_after(datetime.now(UTC))  # (one that never comes)
            if self.every is not None:
                interval_s(self.every)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def kind(self) -> Literal["say", "file", "folder", "topic"]:
        for k in ("say", "file", "folder", "topic"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated")


class Show(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    idle_after_s: float = Field(default=300.0, ge=1.0)
    no_repeat_s: float = Field(default=3600.0, ge=0.0)
    rephrase: bool = False
    system: str = Field(default=SYSTEM, min_length=1, max_length=MAX_PROMPT_CHARS)
    rephrase_system: str = Field(default=REPHRASE, min_length=1, max_length=MAX_PROMPT_CHARS)
    max_queued: int = Field(default=1, ge=1)
    late_s: float = Field(default=600.0, gt=0)
    item: list[Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> Show:
        names = [i.name for i in self.item]
        if (twice := {n for n in names if names.count(n) > 1}):
            raise ValueError(f"item names must differ: {', '.join(sorted(twice))}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone") from None
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Loaded:
    show: Show
    base: Path  # relative file and folder paths are taken from here (the file's folder)

    def path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.base / p


def load(path: Path) -> Loaded:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScheduleError(f"{path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScheduleError(f"{path}: not TOML: {exc}") from None
    try:
        show = Show.model_validate(raw)
    except ValidationError as exc:
        raise ScheduleError(f"{path}: " + "; ".join(_where(raw, e) for e in exc.errors())) \
            from None
    loaded = Loaded(show, path.resolve().parent)
    for item in show.item:
        for p, need in ((item.file, Path.is_file), (item.folder, Path.is_dir)):
            if p is not None and not need(loaded.path(p)):
                raise ScheduleError(f"{path}: item {item.name!r}: {loaded.path(p)} is not a "
                                    f"{'file' if need is Path.is_file else 'folder'}")
    return loaded


def _where(raw: dict[str, object], err: object) -> str:
    """One error as "item 'name': field: what", never the whole input."""
    e = dict(err)  # type: ignore[call-overload]
    loc = list(e["loc"])
    where = ".".join(str(x) for x in loc) or "file"
    items = raw.get("item")
    if len(loc) >= 2 and loc[0] == "item" and isinstance(loc[1], int) and \
            isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
        name = items[loc[1]].get("name", f"#{loc[1] + 1}")
        where = f"item {name!r}" + "".join(f": {x}" for x in loc[2:])
    return f"{where}: {str(e['msg']).removeprefix('Value error, ')}"
