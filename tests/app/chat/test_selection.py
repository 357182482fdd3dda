"""The waiting list: paid first, then questions, then the rest, each oldest first; at most
per_minute a minute; bounded (the oldest of the lowest class goes, with a reason); stale
messages and those the platform's moderators removed leave with a reason."""

from __future__ import annotations

from avatarcast.app.chat.message import ChatMessage, Removal
from avatarcast.app.chat.selection import PAID, QUESTION, REST, Pace, Waiting, rank

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _msg(i: str, text: str = "nice stream", user: str | None = None, at: float = NOW,
         **kw: object) -> ChatMessage:
    return ChatMessage(platform="twitch", id=i, user=user or f"u{i}", display_name=f"U{i}",
                       text=text, at=at, **kw)  # type: ignore[arg-type]


def _waiting(clock: Clock, **pace: float) -> Waiting:
    return Waiting(Pace(**pace), clock=clock, wall=lambda: NOW + clock.t)  # type: ignore[arg-type]


def test_classes() -> None:
    assert rank(_msg("a", "Why is the sky blue?")) == QUESTION
    assert rank(_msg("b", "how do you do that")) == QUESTION
    assert rank(_msg("c", "hello everyone")) == REST
    assert rank(_msg("d", "go team", kind="paid", amount=100.0, currency="bits")) == PAID
    assert rank(_msg("e", "", kind="subscription", tier="1000")) == PAID


def test_paid_then_questions_then_the_rest_at_the_pace() -> None:
    clock = Clock()
    w = _waiting(clock, per_minute=2)
    for m in (_msg("1", "hello"), _msg("2", "What is your name?"),
              _msg("3", "hi", kind="paid", amount=5.0, currency="USD"), _msg("4", "Where?")):
        assert w.add(m) == []
    assert [w.take().id, w.take().id] == ["3", "2"]  # type: ignore[union-attr]
    assert w.take() is None and 59 < w.due_in() <= 60  # two a minute
    clock.t = 30.0
    assert w.take() is None and 29 < w.due_in() <= 30
    clock.t = 60.0
    assert [w.take().id, w.take().id] == ["4", "1"]  # type: ignore[union-attr]
    assert w.take() is None and len(w) == 0


def test_a_full_list_drops_the_oldest_of_the_lowest_class() -> None:
    clock = Clock()
    w = _waiting(clock, max_waiting=3)
    w.add(_msg("q1", "Why?"))
    w.add(_msg("r1", "hello"))
    w.add(_msg("r2", "hey"))
    dropped = w.add(_msg("q2", "How?"))
    assert [(d.msg.id, d.reason) for d in dropped] == [("r1", "waiting list full")]
    w.add(_msg("q3", "When?"))
    w.add(_msg("p1", "", kind="subscription"))  # r2 then q1 go
    assert [d.msg.id for d in w.add(_msg("r3", "yo"))] == ["r3"]  # nothing lower than it
    assert len(w) == 3


def test_stale_and_removed_messages_leave_with_a_reason() -> None:
    clock = Clock()
    w = _waiting(clock, max_age_s=60)
    assert [d.reason for d in w.add(_msg("old", at=NOW - 61))] == ["too old"]
    w.add(_msg("a", "Why?", user="ana"))
    w.add(_msg("b", "How?", user="ana"))
    w.add(_msg("c", "Who?", user="bo"))
    w.add(_msg("d", "When?", user="cy"))
    assert [d.msg.id for d in w.remove(Removal("twitch", message_id="c"))] == ["c"]
    assert [d.msg.id for d in w.remove(Removal("youtube", user="ana"))] == []  # other platform
    removed = w.remove(Removal("twitch", user="ana"))
    assert [(d.msg.id, d.reason) for d in removed] == [("a", "removed by a moderator"),
                                                        ("b", "removed by a moderator")]
    clock.t = 30.0
    w.add(_msg("e", "What?", at=NOW + 30))
    assert w.add(_msg("late", "Why so late?", at=NOW - 20)) == []  # sent 50 s ago
    assert w.holds(_msg("e", "What?")) and not w.holds(_msg("x", "?"))
    clock.t = 61.0
    assert [(d.msg.id, d.reason) for d in w.expire()] == [("d", "too old"),
                                                          ("late", "too old")]
    assert w.take().id == "e"  # type: ignore[union-attr]
    w.add(_msg("f", "Why?", at=NOW + 61))
    assert [d.msg.id for d in w.remove(Removal("twitch"))] == ["f"]  # the chat cleared
