"""What to answer when chat is busy. Messages that passed moderation wait here; at most
`per_minute` leave a minute, the best first: paid messages, subscriptions and memberships
(thanked whatever they say), then questions, then the rest, each class oldest first. The list
is bounded: when it is full the oldest of the lowest class goes, and a message that waited
longer than `max_age_s` (or was sent that long ago, as a backlog after a restart is) is stale.
Whatever the platform's moderators remove leaves it. Every message that leaves without an
answer leaves with a reason."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .message import ChatMessage, Removal
from .moderation import words

PAID, QUESTION, REST = 0, 1, 2
CLASS_NAMES = {PAID: "paid", QUESTION: "question", REST: "message"}
_ASKING = frozenset({"what", "why", "how", "who", "whom", "whose", "when", "where", "which",
                     "can", "could", "do", "does", "did", "is", "are", "was", "were", "should",
                     "would", "will", "have", "has", "may", "might", "shall"})


@dataclass(frozen=True)
class Pace:
    per_minute: int = 4  # answers a minute, at most
    max_waiting: int = 50
    max_age_s: float = 120.0


def rank(msg: ChatMessage) -> int:
    if msg.kind != "message" or msg.amount:
        return PAID
    ws = words(msg.text)
    if msg.text.rstrip().endswith("?") or (ws and ws[0] in _ASKING):
        return QUESTION
    return REST


@dataclass(frozen=True)
class Dropped:
    msg: ChatMessage
    reason: str  # "too old", "waiting list full", "removed by a moderator"


class Waiting:
    """Not thread-safe: one event loop owns it."""

    def __init__(self, pace: Pace | None = None, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.pace = pace or Pace()
        self._clock, self._wall = clock, wall
        self._classes: dict[int, deque[tuple[float, int, ChatMessage]]] = {
            c: deque() for c in (PAID, QUESTION, REST)}
        self._answers: deque[float] = deque()  # when the last ones left
        self._serial = itertools.count()
        self._keys: set[tuple[str, str]] = set()  # (platform, id) of those waiting

    def __len__(self) -> int:
        return len(self._keys)

    def holds(self, msg: ChatMessage) -> bool:
        return (msg.platform, msg.id) in self._keys

    def add(self, msg: ChatMessage) -> list[Dropped]:
        """Wait `msg`; what this pushed out (`msg` itself when it is stale, or when the list
        is full of better ones)."""
        if self._wall() - msg.at > self.pace.max_age_s:
            return [Dropped(msg, "too old")]
        self._classes[rank(msg)].append((self._clock(), next(self._serial), msg))
        self._keys.add((msg.platform, msg.id))
        out = []
        while len(self) > self.pace.max_waiting:
            worst = next(q for c, q in sorted(self._classes.items(), reverse=True) if q)
            out.append(self._gone(worst.popleft()[2], "waiting list full"))
        return out

    def _gone(self, msg: ChatMessage, reason: str) -> Dropped:
        self._keys.discard((msg.platform, msg.id))
        return Dropped(msg, reason)

    def remove(self, removal: Removal) -> list[Dropped]:
        """The messages a moderator removed (one, a user's, or the whole chat's)."""
        def gone(m: ChatMessage) -> bool:
            if m.platform != removal.platform:
                return False
            if removal.message_id is not None:
                return m.id == removal.message_id
            return removal.user is None or m.user == removal.user

        out = []
        for c, q in self._classes.items():
            keep = deque(e for e in q if not gone(e[2]))
            out += [self._gone(e[2], "removed by a moderator") for e in q if gone(e[2])]
            self._classes[c] = keep
        return out

    def expire(self) -> list[Dropped]:
        """The messages sent longer ago than max_age_s (by the platform's clock, or by this
        process's count of how long they waited, whichever says older)."""
        now, wall, limit, out = self._clock(), self._wall(), self.pace.max_age_s, []
        for c, q in self._classes.items():
            old = [e for e in q if now - e[0] > limit or wall - e[2].at > limit]
            if old:
                serials = {e[1] for e in old}
                self._classes[c] = deque(e for e in q if e[1] not in serials)
                out += [self._gone(e[2], "too old") for e in old]
        return out

    def take(self) -> ChatMessage | None:
        """The next to answer, if one waits and the pace allows one now."""
        if self.due_in() > 0:
            return None
        for c in (PAID, QUESTION, REST):
            if self._classes[c]:
                self._answers.append(self._clock())
                msg = self._classes[c].popleft()[2]
                self._keys.discard((msg.platform, msg.id))
                return msg
        return None

    def due_in(self) -> float:
        """Seconds until the pace allows the next answer (0: now)."""
        now = self._clock()
        while self._answers and now - self._answers[0] >= 60.0:
            self._answers.popleft()
        if len(self._answers) < self.pace.per_minute:
            return 0.0
        return 60.0 - (now - self._answers[0])
