"""`avatarcast show FILE`: the run of show, a publisher to the channel's speak queue beside its
operators and `avatarcast chat`. Scheduled items (cron, every) are published when due, the
idle rotation when nothing has aired for idle_after_s; each only while the speak queue holds
fewer than max_queued texts, so operators' texts and chat answers are never stuck behind a
backlog of the show's. What has aired is read from the daemon's lifecycle events.

Shares of the queue: operators publish whenever they like and are at most max_queued texts
behind the show; chat answers (at chat.per_minute) make the channel busy, and the idle
rotation waits for a silence; a scheduled item that could not go within late_s of its time
(the queue full all along) is skipped with that reason. Every decision is a lifecycle event
(show.published, show.skipped with the reason)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ...broker.events import EventPublisher
from ...broker.feeder import Feeder
from ...broker.messages import AskMessage, SpeakMessage, Utterable
from ...playout.lifecycle import Event
from ...settings import Settings
from .content import Memory, candidates, moved_on, parts
from .cron import Cron, interval_s
from .schedule import Item, Loaded

log = logging.getLogger(__name__)

TICK_S = 1.0


class ShowRunner:
    def __init__(self, settings: Settings, loaded: Loaded, state_path: Path) -> None:
        self._broker = settings.broker
        self.loaded = loaded
        self.show = loaded.show
        self.memory = Memory(state_path, self.show.no_repeat_s)
        self._feeder = Feeder(settings.broker, "avatarcast-show")
        self._events = EventPublisher(settings.broker)
        self._due: dict[str, datetime] = {}
        self._pending: list[tuple[Item, datetime]] = []

    async def run(self) -> None:
        self.memory.load()
        now = self._now()
        for item in self.show.item:
            if not item.idle:
                self._due[item.name] = self._next(item, now)
        tasks = [asyncio.create_task(self._events.run(), name="show-events"),
                 asyncio.create_task(self._feeder.run(), name="show-watch")]
        try:
            while True:
                for t in tasks:
                    if t.done():  # never by itself: a fault
                        t.result()
                        raise RuntimeError(f"{t.get_name()} ended")
                await self.tick()
                await asyncio.sleep(TICK_S)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._events.flush(2.0)
            await self._events.aclose()
            await self._feeder.aclose()

    def _now(self) -> datetime:
        """Now, in UTC: times are compared and subtracted as instants, never as wall times
        (which summer time moves)."""
        return datetime.now(UTC)

    def _next(self, item: Item, after: datetime) -> datetime:
        if item.cron is not None:
            return Cron.parse(item.cron).next_after(after, self.show.zone).astimezone(UTC)
        assert item.every is not None
        return after + timedelta(seconds=interval_s(item.every))

    async def tick(self) -> None:
        """One look at the clock and the queue."""
        now = self._now()
        for item in self.show.item:
            if not item.idle and now >= self._due[item.name]:
                self._pending.append((item, self._due[item.name]))
                self._due[item.name] = self._next(item, now)
        while self._pending:
            item, slot = self._pending[0]
            if (now - slot).total_seconds() > self.show.late_s:
                self._pending.pop(0)
                self._decided(item, "skipped", f"not aired within {self.show.late_s:g} s of "
                              f"{slot.astimezone(self.show.zone):%H:%M} (the queue was full)")
                continue
            if not await self._room():
                return
            self._pending.pop(0)
            local = slot.astimezone(self.show.zone)
            await self._air(item, f"{item.name}:{local:%Y%m%dT%H%M%S%z}", "scheduled")
        if self._idle() and await self._room(idle=True):
            await self._idle_pick()

    def _idle(self) -> bool:
        w = self._feeder.watch
        return not w.airing() and time.time() - w.last_end >= self.show.idle_after_s

    async def _room(self, idle: bool = False) -> bool:
        queued = await self._feeder.queued()
        return queued is not None and queued < (1 if idle else self.show.max_queued)

    async def _room_within(self, limit_s: float) -> bool:
        """Wait for room for one more text (a long script's next part), at most limit_s."""
        deadline = time.monotonic() + limit_s
        while not await self._room():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(TICK_S)
        return True

    async def _idle_pick(self) -> None:
        """The rotation's next item with something not said lately; failing that, with
        rephrase, the next item said anew by the LLM."""
        rotation = [i for i in self.show.item if i.idle]
        if not rotation:
            return
        start = self.memory.rotation_next % len(rotation)
        order = [(start + k) % len(rotation) for k in range(len(rotation))]
        for mode in ("fresh", "anew") if self.show.rephrase else ("fresh",):
            for k in order:
                item = rotation[k]
                if await self._air(item, f"{item.name}:{time.time_ns() // 1_000_000}", mode):
                    self.memory.rotation_next = (k + 1) % len(rotation)
                    self.memory.save()
                    return
        self._feeder.watch.last_end = time.time()  # nothing to say: look after another silence
        log.info("show: every idle item was said within the last %g s; silent for now",
                 self.show.no_repeat_s)
        self._events.send(Event("show.skipped", "show:rotation", time.time(), 0, 0, 0.0,
                                {"reason": "everything was said lately"}))

    async def _air(self, item: Item, key: str, mode: str) -> bool:
        """Publish what the item says now; False when it has nothing to say in this `mode`:
        "fresh" (only words not said lately), "anew" (else its first, said anew by the LLM),
        "scheduled" (else its first: as it is, or anew with rephrase). A topic is always
        fresh: the model's words differ each time."""
        try:
            options = candidates(item, self.loaded, self.memory)
        except ValueError as exc:
            self._decided(item, "skipped", str(exc))
            return False
        fresh = [(t, f) for t, f in options
                 if item.topic is not None or not self.memory.recent(t)]
        if fresh:
            (text, used), anew = fresh[0], False
        elif options and mode != "fresh":
            (text, used), anew = options[0], self.show.rephrase
        else:
            return False
        msgs = self._messages(item, f"show:{key}", text, anew=anew)
        for i, msg in enumerate(msgs):
            if i and not await self._room_within(self.show.late_s):
                self._decided(item, "skipped", f"parts {i + 1}-{len(msgs)} of a long script: "
                              f"no room in the queue within {self.show.late_s:g} s")
                break
            await self._feeder.publish(msg)
        self.memory.said(text)
        moved_on(item, self.loaded, self.memory, used)
        self.memory.save()
        self._feeder.watch.last_end = time.time()  # (until it airs: no second idle pick)
        self._decided(item, "published", None, msgs[0].id)
        return True

    def _messages(self, item: Item, msg_id: str, text: str, *, anew: bool) -> list[Utterable]:
        if item.topic is not None:  # (asked again, a topic is said anew anyway)
            return [AskMessage(id=msg_id, prompt=text, system=self.show.system,
                               voice=item.voice)]
        if anew:
            return [AskMessage(id=msg_id, prompt=text, system=self.show.rephrase_system,
                               voice=item.voice)]
        texts = parts(text)
        return [SpeakMessage(id=msg_id if len(texts) == 1 else f"{msg_id}:{n}", text=t,
                             voice=item.voice) for n, t in enumerate(texts, 1)]

    def _decided(self, item: Item, decision: str, reason: str | None,
                 msg_id: str | None = None) -> None:
        fields = {"item": item.name, "kind": item.kind}
        if reason is not None:
            fields["reason"] = reason
        log.info("show: %s %s%s", item.name, decision, f" ({reason})" if reason else "")
        self._events.send(Event(f"show.{decision}", msg_id or f"show:{item.name}",
                                time.time(), 0, 0, 0.0, fields))
