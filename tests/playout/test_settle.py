"""Settlement: one table says what each outcome means for its message, and settling does it
on the broker (ack, dead-letter with the reason, requeue), keeps handled ids, ends the crash
count, records the utterance and tells its event."""

from __future__ import annotations

from pathlib import Path

import pytest

from avatarcast.broker.attempts import Attempts
from avatarcast.broker.consumer import Delivery
from avatarcast.broker.dedupe import HandledIds
from avatarcast.broker.messages import SpeakMessage
from avatarcast.onair.segment import Outcome
from avatarcast.playout.captions.record import AirRecord
from avatarcast.playout.lifecycle import EVENTS, Event, Lifecycle
from avatarcast.playout.rendering import Utterance
from avatarcast.playout.settle import MEANINGS, Action, Settlement

from .test_scheduler import FakeBroker, Raw


def test_every_outcome_has_one_meaning_and_every_event_exists() -> None:
    assert set(MEANINGS) == set(Outcome)
    for outcome, meaning in MEANINGS.items():
        assert meaning.event is None or meaning.event in EVENTS, outcome
        # What is acked must not air again; only a retry is no news.
        assert (meaning.event is None) == (meaning.action is Action.RENDER_AGAIN), outcome


@pytest.fixture
def rig(tmp_path: Path) -> tuple[Settlement, FakeBroker, HandledIds, Attempts, list[Event]]:
    broker = FakeBroker()
    handled = HandledIds(tmp_path / "handled.log", 100)
    attempts = Attempts(tmp_path / "attempts.json")
    events: list[Event] = []
    life = Lifecycle(30, lambda: (1, 0))
    life.subscribe(events.append)
    record = AirRecord(transcript=None, vtt=None, sample_rate=48_000, fps=30, max_chars=40)
    return (Settlement(broker=broker, handled=handled, attempts=attempts, lifecycle=life,
                       air_record=record, spf=1600), broker, handled, attempts, events)


def _utt(msg_id: str) -> Utterance:
    return Utterance(Delivery(SpeakMessage(id=msg_id, text="Hello."),
                              Raw(msg_id)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "how", "handled", "event", "reason"),
    [
        (Outcome.AIRED, "acked", True, "finished", None),
        (Outcome.SKIPPED, "acked", True, "skipped", "skip"),
        (Outcome.CLEARED, "acked", True, "skipped", "cleared"),
        (Outcome.INTERRUPTED, "acked", True, "interrupted", "interrupted by a newer message"),
        (Outcome.FAILED, "dead", True, "failed", "rendering failed: no voice"),
        (Outcome.REQUEUED, "requeued", False, "requeued", "shutdown: back in the queue"),
    ],
)
async def test_each_outcome_is_settled_and_told_as_its_meaning_says(
    tmp_path: Path, rig: tuple[Settlement, FakeBroker, HandledIds, Attempts, list[Event]],
    outcome: Outcome, how: str, handled: bool, event: str, reason: str | None,
) -> None:
    settlement, broker, ids, attempts, events = rig
    utt = _utt("m-1")
    if outcome is Outcome.FAILED:
        utt.error = "rendering failed: no voice"
    attempts.begin("m-1")
    await settlement.settle(utt, outcome)
    await settlement.report(utt, outcome)
    assert broker.settled["m-1"][0] == how
    if how == "dead":
        assert broker.settled["m-1"][1] == reason  # the dead letter carries the reason
    assert ("m-1" in ids) is handled
    after_a_crash = Attempts(tmp_path / "attempts.json")  # what a next process would read
    after_a_crash.load()
    assert after_a_crash.deaths("m-1") == 0  # settled: no longer a suspect
    assert [(e.name, e.fields.get("reason")) for e in events] == [(event, reason)]
    assert settlement.history[-1]["id"] == "m-1"
    assert settlement.history[-1]["outcome"] == outcome.value


async def test_a_retry_is_not_settled_with_the_broker(
    rig: tuple[Settlement, FakeBroker, HandledIds, Attempts, list[Event]],
) -> None:
    settlement, broker, *_ = rig
    with pytest.raises(ValueError, match="not settled"):
        await settlement.settle(_utt("m-2"), Outcome.RETRY)
    assert broker.settled == {}
