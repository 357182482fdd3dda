"""The stream-state machine: an Enum, a transition table, and loud failure on illegal moves."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class StreamState(enum.Enum):
    IDLE = "idle"  # idle cycle on air, nothing waiting
    PROCESSING = "processing"  # idle on air while an utterance is synthesized/rendered
    TALKING = "talking"  # a speech segment on air
    TRANSITIONING = "transitioning"  # crossfade between idle and talking, either way
    ERROR = "error"  # encoder down: idle is produced, nothing new airs until it recovers


S = StreamState
TRANSITIONS: dict[StreamState, frozenset[StreamState]] = {
    S.IDLE: frozenset({S.PROCESSING, S.TALKING, S.TRANSITIONING, S.ERROR}),
    S.PROCESSING: frozenset({S.IDLE, S.TALKING, S.TRANSITIONING, S.ERROR}),
    S.TALKING: frozenset({S.IDLE, S.PROCESSING, S.TRANSITIONING, S.ERROR}),
    S.TRANSITIONING: frozenset({S.IDLE, S.PROCESSING, S.TALKING, S.ERROR}),
    # Recovery goes through idle: nothing airs straight out of an error.
    S.ERROR: frozenset({S.IDLE, S.PROCESSING}),
}


class IllegalTransition(RuntimeError):
    pass


class StateMachine:
    """Thread-safe: the pacer thread and the event loop both move it."""

    def __init__(
        self, on_change: Callable[[StreamState, StreamState, str], None] | None = None
    ) -> None:
        self._state = StreamState.IDLE
        self._lock = threading.Lock()
        self._on_change = on_change

    @property
    def state(self) -> StreamState:
        return self._state

    def transition(self, new: StreamState, reason: str = "") -> None:
        with self._lock:
            old = self._state
            if new is old:
                return
            if new not in TRANSITIONS[old]:
                raise IllegalTransition(f"{old.name} -> {new.name} is not allowed ({reason})")
            self._state = new
        log.info("state %s -> %s%s", old.name, new.name, f" ({reason})" if reason else "")
        if self._on_change is not None:
            self._on_change(old, new, reason)
