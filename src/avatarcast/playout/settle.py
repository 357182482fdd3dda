"""Settlement: what an utterance's outcome means for its message, in one table (the broker's
action, the lifecycle event and its reason), and the acts that follow from it: the ack,
dead-letter or requeue on the channel that delivered it, the handled ids, the crash count,
the recent history, the events and the record of what aired. Owned by the event loop.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from ..broker.attempts import Attempts
from ..broker.dedupe import HandledIds
from ..onair.segment import Outcome
from .captions.record import AirRecord
from .lifecycle import Lifecycle
from .rendering import Utterance

log = logging.getLogger(__name__)


class Broker(Protocol):
    """What settling needs of RabbitMQ (the Consumer)."""

    async def ack(self, raw: Any) -> None: ...
    async def record_handled(self, msg_id: str) -> bool: ...
    async def requeue(self, raw: Any) -> None: ...
    async def dead_letter(self, raw: Any, reason: str) -> bool: ...
    async def purge_speak(self) -> int: ...


class Action(enum.Enum):
    ACK = "ack"  # done with: it must not air again if redelivered
    DEAD_LETTER = "dead-letter"  # copied to the dead-letter queue with its reason
    REQUEUE = "requeue"  # back to RabbitMQ, to air later
    RENDER_AGAIN = "render again"  # not settled: rendered and aired anew (an encoder outage)


@dataclass(frozen=True)
class Meaning:
    action: Action
    event: str | None  # the lifecycle event it is told as (None: no news, it airs again)
    reason: str | None = None  # the event's reason (a failure's is its error)


MEANINGS: dict[Outcome, Meaning] = {
    Outcome.AIRED: Meaning(Action.ACK, "finished"),
    Outcome.SKIPPED: Meaning(Action.ACK, "skipped", "skip"),
    Outcome.CLEARED: Meaning(Action.ACK, "skipped", "cleared"),
    Outcome.INTERRUPTED: Meaning(Action.ACK, "interrupted", "interrupted by a newer message"),
    Outcome.FAILED: Meaning(Action.DEAD_LETTER, "failed"),
    Outcome.REQUEUED: Meaning(Action.REQUEUE, "requeued", "shutdown: back in the queue"),
    Outcome.RETRY: Meaning(Action.RENDER_AGAIN, None),
}
RENDERING_FAILED = "rendering failed"


class Settlement:
    """Settles utterances with the broker, then reports them (history, events, air record)."""

    def __init__(
        self, *, broker: Broker, handled: HandledIds, attempts: Attempts, lifecycle: Lifecycle,
        air_record: AirRecord, spf: int,
    ) -> None:
        self._broker = broker
        self._handled = handled
        self._attempts = attempts
        self._lifecycle = lifecycle
        self._air_record = air_record
        self._spf = spf
        self.history: deque[dict[str, Any]] = deque(maxlen=50)

    async def settle(self, utt: Utterance, outcome: Outcome) -> None:
        """The broker's part: ack, dead-letter or requeue, on the delivery's own channel."""
        action = MEANINGS[outcome].action
        raw = utt.delivery.raw
        if action is Action.ACK:
            # Known here, and to the channel's next owner on any worker, before the ack: an
            # ack lost with this process or its broker node never airs the message twice.
            self._handled.add(utt.id)
            await self._broker.record_handled(utt.id)
            await self._broker.ack(raw)
        elif action is Action.DEAD_LETTER:
            if await self._broker.dead_letter(raw, utt.error or RENDERING_FAILED):
                # Copied with its reason: a redelivery (the ack may miss a dead channel) is
                # acked, not failed and copied again.
                self._handled.add(utt.id)
                await self._broker.record_handled(utt.id)
        elif action is Action.REQUEUE:
            await self._broker.requeue(raw)
        else:
            raise ValueError(f"{outcome} is not settled with the broker")
        self._attempts.end(utt.id)

    async def report(self, utt: Utterance, outcome: Outcome) -> None:
        """What is told and kept of a settled utterance; then its frames are let go."""
        self._record(utt, outcome)
        self._tell(utt, outcome)
        seg = utt.segment
        if self._air_record.enabled and seg is not None and seg.stream_first is not None:
            aired = (seg.stream_last or seg.stream_first) - seg.stream_first + 1
            await asyncio.to_thread(self._air_record.aired, utt.id, seg.stream_run or 0,
                                    seg.stream_first, aired * self._spf, utt.script)
        if utt.segment is not None:
            utt.segment.release()
            utt.segment = None

    def _record(self, utt: Utterance, outcome: Outcome) -> None:
        seg = utt.segment
        entry: dict[str, Any] = {
            "id": utt.id,
            "outcome": outcome.value,
            "received_at": utt.received,
            "settled_at": time.time(),
            **{k: round(v, 4) for k, v in utt.timings.items()},
            **utt.marks,
        }
        if utt.error:
            entry["error"] = utt.error
        if seg is not None:
            entry.update(
                frames=len(seg.audio), started_at=seg.started_at, ended_at=seg.ended_at,
                stream_run=seg.stream_run, stream_first=seg.stream_first,
                stream_last=seg.stream_last, aired_at=seg.aired_wall,
                off_air_at=seg.ended_wall if seg.aired_wall is not None else None,
            )
        self.history.append(entry)
        log.info("settled %s: %s", utt.id, outcome.value)

    def _tell(self, utt: Utterance, outcome: Outcome) -> None:
        meaning = MEANINGS[outcome]
        if meaning.event is None:
            return
        seg = utt.segment
        at = None
        fields: dict[str, Any] = {}
        if seg is not None and seg.stream_first is not None:
            at = (seg.stream_run or 0, seg.stream_last or seg.stream_first)
            fields.update(first_frame=seg.stream_first, last_frame=seg.stream_last,
                          frames=(seg.stream_last or seg.stream_first) - seg.stream_first + 1)
        reason = meaning.reason
        if meaning.action is Action.DEAD_LETTER:
            reason = utt.error or RENDERING_FAILED
        if utt.answer:
            fields["answer"] = utt.answer
        if utt.fallback:
            fields["fallback"] = utt.fallback  # the voice's provider was down: who spoke
        self._lifecycle.emit(meaning.event, utt.id, at_frame=at, reason=reason,
                             **{k: round(v, 4) for k, v in utt.timings.items()}, **fields)
