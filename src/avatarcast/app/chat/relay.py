"""`avatarcast chat`: live chat in, moderated answers out, as a publisher to a channel's speak
queue (the daemon is a daemon like any other to it). Each source's events pass moderation,
wait in the selection's list, and leave at the chosen pace as `ask` messages (or thanks) that
the broker confirmed. Every decision is a lifecycle event (routing key chat.waiting,
chat.published or chat.dropped, with the reason) and a counter on /metrics.

Exactly once: what was decided (published or dropped) is remembered in the state directory,
and what airs has an id made of the platform's own message id, so neither a restart that
reads the same messages again (YouTube pages back) nor a publish the broker confirmed twice
airs anything twice."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping
from pathlib import Path

from ...broker.dedupe import HandledIds
from ...broker.events import EventPublisher
from ...broker.feeder import Feeder
from ...broker.messages import AskMessage
from ...playout.lifecycle import Event
from ...settings import Settings
from .answers import message_id, on_air
from .message import ChatEvent, ChatMessage, ChatSource, Removal
from .metrics import ChatMetrics
from .moderation import Limits, Moderator
from .selection import Pace, Waiting
from .twitch import ChatError

log = logging.getLogger(__name__)

TICK_S = 1.0  # how often the waiting list is looked at with nothing new (expiry, the queue)


class Relay:
    def __init__(self, settings: Settings, sources: Mapping[str, ChatSource],
                 state_path: Path) -> None:
        c = self._c = settings.chat
        self._broker = settings.broker
        self._sources = dict(sources)
        self.moderator = Moderator(blocklist(c.blocklist, c.blocklist_file), Limits(
            max_chars=c.max_chars, per_user=c.per_user, per_user_window_s=c.per_user_window_s,
            cooldown_s=c.cooldown_s, duplicate_window_s=c.duplicate_window_s,
            near_duplicate=c.near_duplicate))
        self.waiting = Waiting(Pace(c.per_minute, c.max_waiting, c.max_age_s))
        self.handled = HandledIds(state_path, c.handled_capacity)
        self.metrics = ChatMetrics(list(self._sources))
        self._events = EventPublisher(settings.broker)
        self._wake = asyncio.Event()
        self._feeder = Feeder(settings.broker, "avatarcast-chat")
        self._publishing: str | None = None  # the id being published now

    async def run(self) -> int:
        """Until every source ended: 0 when they all ended by themselves (a broadcast over),
        3 when one was refused (a token, a chat gone) and none is left."""
        self.handled.load()
        helpers = [asyncio.create_task(self._events.run(), name="chat-events"),
                   asyncio.create_task(self._feeder.run(), name="chat-watch"),
                   asyncio.create_task(self._answer(), name="chat-answers")]
        if self._c.metrics_port is not None:
            helpers.append(asyncio.create_task(self.metrics.serve(self._c.metrics_port)))
        readers = [asyncio.create_task(self._read(n, s), name=f"chat-{n}")
                   for n, s in self._sources.items()]
        refused = False
        try:
            pending: set[asyncio.Task[object]] = set(readers) | set(helpers)
            while any(r in pending for r in readers):
                done, pending = await asyncio.wait(pending, return_when="FIRST_COMPLETED")
                for task in done:
                    if task in helpers:  # a helper never ends by itself: that is a fault
                        task.result()
                        raise RuntimeError(f"{task.get_name()} ended")
                    refused |= task.result() is False
            return 3 if refused else 0
        finally:
            for task in readers + helpers:
                task.cancel()
            await asyncio.gather(*readers, *helpers, return_exceptions=True)
            await self._events.flush(2.0)
            await self._events.aclose()
            await self._feeder.aclose()
            for source in self._sources.values():
                with contextlib.suppress(Exception):
                    await source.aclose()

    async def _read(self, name: str, source: ChatSource) -> bool:
        """One source until it ends: True when it ended by itself, False when refused."""
        self.metrics.source_up(name, True)
        try:
            async for event in source.events():
                self.heard(event)
        except ChatError as exc:
            log.error("chat %s stops: %s", name, exc)
            return False
        finally:
            self.metrics.source_up(name, False)
        log.info("chat %s ended", name)
        return True

    def heard(self, event: ChatEvent) -> None:
        """One event from a source: decided at once (moderation) or put in the waiting list."""
        if isinstance(event, Removal):
            for d in self.waiting.remove(event):
                self._decided(d.msg, "dropped", d.reason)
            return
        wire = message_id(event)
        if wire in self.handled or self.waiting.holds(event) or wire == self._publishing:
            self.metrics.decided(event.platform, "repeated", "handled before")
            return
        reason = self.moderator.check(event)
        if reason is not None and event.kind != "message":
            # Thanked for the support whatever they wrote; their words are not aired.
            if event.text.strip():
                self.metrics.decided(event.platform, "words dropped", reason)
            event = dataclasses.replace(event, text="")
        elif reason is not None:
            self._decided(event, "dropped", reason)
            return
        self._decided(event, "waiting", None)
        for d in self.waiting.add(event):
            self._decided(d.msg, "dropped", d.reason)
        self.metrics.waiting.set(len(self.waiting))
        self._wake.set()

    def _decided(self, msg: ChatMessage, decision: str, reason: str | None) -> None:
        self.metrics.decided(msg.platform, decision, reason)
        if decision != "waiting":
            # A drop can be decided again the same way after a power cut: not synced (a
            # flood of them would hold the loop on the disk).
            self.handled.add(message_id(msg), durable=decision == "published")
        fields = {"platform": msg.platform, "chat_id": msg.id, "user": msg.user,
                  "display_name": msg.display_name, "kind": msg.kind}
        if reason is not None:
            fields["reason"] = reason
        log.log(logging.INFO if decision == "published" else logging.DEBUG,
                "chat %s %s from %s: %s%s", msg.platform, msg.id, msg.display_name, decision,
                f" ({reason})" if reason else "")
        self._events.send(Event(f"chat.{decision}", message_id(msg), time.time(), 0, 0, 0.0,
                                fields))

    async def _answer(self) -> None:
        """Chosen messages out, one at a time, at the pace, while the queue has room."""
        while True:
            for d in self.waiting.expire():
                self._decided(d.msg, "dropped", d.reason)
            self.metrics.waiting.set(len(self.waiting))
            due = self.waiting.due_in()
            if not len(self.waiting) or due > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(TICK_S, due) if due > 0 else TICK_S):
                        await self._wake.wait()
                continue
            if not await self._room():  # (asked of the broker at most once a tick)
                await asyncio.sleep(TICK_S)
                continue
            msg = self.waiting.take()
            if msg is None:
                continue
            if msg.kind == "message" and self.moderator.cooling(msg.user):
                # (one of theirs was answered while this one waited)
                self._decided(msg, "dropped", "cool-down")
                continue
            wire = on_air(msg, self.moderator, self._c)
            self._publishing = wire.id
            try:
                await self._feeder.publish(wire)
            finally:
                self._publishing = None
            if isinstance(wire, AskMessage):  # (thanks alone start no cool-down)
                self.moderator.answered(msg.user)
            self._decided(msg, "published", None)

    async def _room(self) -> bool:
        """Whether the speak queue holds fewer than max_queued texts."""
        queued = await self._feeder.queued()
        return queued is not None and queued < self._c.max_queued


def blocklist(words: list[str], path: Path | None) -> list[str]:
    """The configured words, and the file's (one a line, # comments)."""
    out = list(words)
    if path is not None:
        for line in path.read_text(encoding="utf-8").splitlines():
            if (entry := line.split("#", 1)[0].strip()):
                out.append(entry)
    return out

