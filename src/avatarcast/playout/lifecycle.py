"""A message's life, as events: what publishers follow (published to RabbitMQ, broker/events.py)
and what the metrics count (metrics.py). Owned by the event loop; the pacer thread hands its
one event (the first frame on air) over through the loop.

    accepted     taken from the queue, waiting for its turn
    duplicate    an id already handled: acked, not aired again
    rendering    speech and face being made
    on_air       its first frame went to the encoder
    finished     its last frame went to the encoder (aired in full)
    skipped      cut by `skip`, or dropped by `clear` (reason "cleared")
    interrupted  cut by an interrupting message
    failed       dead-lettered, with the reason
    requeued     handed back to RabbitMQ (shutdown); it airs later

Each event carries the wall-clock time and the stream's clock: the encoder run and the frame
of that run (and the same in seconds) at which it happened, on air or not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..infra.redact import global_redactor

log = logging.getLogger(__name__)

EVENTS = ("accepted", "duplicate", "rendering", "on_air", "finished", "skipped",
          "interrupted", "failed", "requeued", "scene")
TERMINAL = ("duplicate", "finished", "skipped", "interrupted", "failed")


@dataclass(frozen=True)
class Event:
    name: str
    id: str
    at: float  # time.time()
    stream_run: int
    stream_frame: int
    stream_s: float
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.name, "id": self.id, "at": round(self.at, 3),
                "stream_run": self.stream_run, "stream_frame": self.stream_frame,
                "stream_s": round(self.stream_s, 3), **self.fields}


StreamClock = Callable[[], tuple[int, int]]  # (encoder run, frame of that run) now


class Lifecycle:
    """Fans events out to its subscribers; a subscriber that raises is logged, never lets the
    others (or the caller) down."""

    def __init__(self, fps: int, clock: StreamClock) -> None:
        self._fps = fps
        self._clock = clock
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        self._subscribers.append(fn)

    def emit(self, name: str, msg_id: str, *, at_frame: tuple[int, int] | None = None,
             **fields: Any) -> Event:
        if name not in EVENTS:
            raise ValueError(f"unknown lifecycle event {name!r}")
        run, frame = at_frame if at_frame is not None else self._clock()
        redact = global_redactor()  # reasons quote providers and FFmpeg: no secret goes out
        event = Event(name, msg_id, time.time(), run, frame, frame / self._fps,
                      {k: redact(v) if isinstance(v, str) else v
                       for k, v in fields.items() if v is not None})
        for fn in self._subscribers:
            try:
                fn(event)
            except Exception:
                log.exception("%s: lifecycle subscriber failed on %s", msg_id, name)
        return event
