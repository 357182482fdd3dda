"""Chat moderation: the blocklist through simple evasion (case, accents, spacing, look-alike
letters and signs, stretched letters) without blocking innocent words that contain a blocked
one; links; spam; the length cap; per-user rate limits and the cool-down after an answer;
duplicates and near-duplicates; memory bounded by a flood."""

from __future__ import annotations

import tracemalloc

from avatarcast.app.chat.message import ChatMessage
from avatarcast.app.chat.moderation import Limits, Moderator, words


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def msg(text: str, user: str = "u1", n: int = 0) -> ChatMessage:
    return ChatMessage(platform="twitch", id=f"m{n}", user=user, display_name=user, text=text,
                       at=0.0)


def test_the_blocklist_sees_through_simple_evasion() -> None:
    mod = Moderator(blocklist=["scam", "buy followers"], limits=Limits(per_user=1000))
    blocked = ["SCAM", "sc4m", "s c a m", "s.c.a.m", "\u0455\u0441\u0430m", "$cam",
               "scaaaam", "Scám!", "buy f0llowers now", "BUY   followers",
               "what a s.c.a.m", "i s c a m"]  # spaced letters joined to a lone "a" or "i"
    for i, text in enumerate(blocked):
        assert mod.check(msg(f"{text} here", n=i)) == "blocked word", text
    innocent = ["What a scampi recipe", "Is it a scamper or a run?", "I buy things",
                "How many followers do you have?", "I am a fan", "A B C of scampi"]
    for i, text in enumerate(innocent):
        assert mod.check(msg(text, user=f"v{i}")) is None, text
    assert words("Great show!") == ["great", "show"] and words("a$$et") == ["asset"]


def test_links_spam_and_length() -> None:
    mod = Moderator(limits=Limits(max_chars=50, per_user=1000))
    assert mod.check(msg("see https://x.example/win")) == "link"
    assert mod.check(msg("go to www.example.org")) == "link"
    assert mod.check(msg("free at bit.ly/abc")) == "link"
    assert mod.check(msg("x" * 51)) == "too long"
    assert mod.check(msg("   ")) == "empty"
    assert mod.check(msg("!!!!!!!!!!!!!!!!")) == "spam"
    assert mod.check(msg("lol lol lol lol lol lol lol lol")) == "spam"
    assert mod.check(msg("Is 3.5 degrees cold? e.g. for a walk")) is None


def test_rate_limits_cool_downs_and_duplicates() -> None:
    clock = Clock()
    mod = Moderator(limits=Limits(per_user=2, per_user_window_s=60, cooldown_s=120,
                                  duplicate_window_s=300), clock=clock)
    assert mod.check(msg("first question about the moon", "ana")) is None
    assert mod.check(msg("second question about the sun", "ana")) is None
    assert mod.check(msg("third question about the stars", "ana")) == "rate limit"
    clock.t += 61
    assert mod.check(msg("fourth question about comets", "ana")) is None
    mod.answered("ana")
    clock.t += 60
    assert mod.check(msg("one more about planets", "ana")) == "cool-down"
    clock.t += 61
    assert mod.check(msg("one more about planets", "ana")) is None
    # Someone else, the same words (or nearly): a duplicate, for the window.
    assert mod.check(msg("One more about PLANETS!", "bo")) == "duplicate"
    assert mod.check(msg("why is the sky blue during the day", "cy")) is None
    assert mod.check(msg("why is the sky blue during the day today", "di")) == "duplicate"
    clock.t += 301
    assert mod.check(msg("One more about planets", "bo")) is None


def test_a_flood_keeps_memory_bounded() -> None:
    clock = Clock()
    mod = Moderator(limits=Limits(max_users=1000, max_recent=500))
    tracemalloc.start()
    for i in range(5_000):
        clock.t += 0.001
        mod.check(msg(f"message number {i} from a new viewer {i * 7}", user=f"user{i}", n=i))
    mid, _ = tracemalloc.get_traced_memory()
    for i in range(5_000, 25_000):
        clock.t += 0.001
        mod.check(msg(f"message number {i} from a new viewer {i * 7}", user=f"user{i}", n=i))
    end, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 20 000 more messages, each from a new viewer: no growth to speak of (bench chat floods
    # 100 000).
    assert end - mid < 1_000_000, (mid, end)
