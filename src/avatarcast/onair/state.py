"""The stream-state machine: an Enum, a transition table, and loud failure on illegal moves.

The program tells the machine what each tick showed (`step`) and whether the encoder is up
(`encoder`); the machine decides the state, and the program asks it whether a segment may
start (`may_start`). The table is the only judge: a move it does not list raises
IllegalTransition, whoever asks for it.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Seen:
    """What a tick showed."""

    talking: bool  # a frame of a speech segment
    fading: bool  # a crossfade in or out of speech, or the fade after a cut
    waiting: bool  # segments queued, being prepared, or held for an interrupt


class StateMachine:
    """Thread-safe: the pacer thread steps it, the event loop reads it."""

    def __init__(
        self, on_change: Callable[[StreamState, StreamState, str], None] | None = None
    ) -> None:
        self._state = StreamState.IDLE
        self._lock = threading.Lock()
        self._on_change = on_change
        # Until the encoder says it is up, nothing airs into a void.
        self._encoder_up = False

    @property
    def state(self) -> StreamState:
        return self._state

    def encoder(self, up: bool) -> None:
        """The encoder went down (ERROR at once: nothing may start from now on) or is up again
        (the next step leaves ERROR, through idle)."""
        self._encoder_up = up
        if not up:
            self.transition(StreamState.ERROR, "encoder down")

    def may_start(self) -> bool:
        """May a segment go on air now?"""
        return self._encoder_up and self._state is not StreamState.ERROR

    def step(self, seen: Seen) -> StreamState:
        """The state after a tick that showed `seen`."""
        if not self._encoder_up:
            new = StreamState.ERROR
        elif self._state is StreamState.ERROR and seen.fading and not seen.talking:
            # The fade of what the outage cut is not speech on air: recovery goes on through
            # processing (a speech segment on air straight out of an error raises below).
            new = StreamState.PROCESSING
        elif seen.fading:
            new = StreamState.TRANSITIONING
        elif seen.talking:
            new = StreamState.TALKING
        elif seen.waiting:
            new = StreamState.PROCESSING
        else:
            new = StreamState.IDLE
        self.transition(new)
        return new

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
