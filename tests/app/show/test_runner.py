"""The show's choices, without a broker: what each kind of item publishes, the rotation passing
over what was said lately (or, with rephrase, asking the LLM to say it anew), a folder's
scripts in turn, and a scheduled item too late for its time skipped with the reason."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from avatarcast.app.show.runner import ShowRunner
from avatarcast.app.show.schedule import REPHRASE, SYSTEM, load
from avatarcast.broker.airwatch import AirWatch
from avatarcast.broker.messages import SpeakMessage, Utterable
from avatarcast.settings import Settings


class Queue:
    """The speak queue as the show sees it: what was published, how many texts wait, and the
    daemon's airing as its events tell (fed here by hand)."""

    def __init__(self) -> None:
        self.published: list[Utterable] = []
        self.waiting = 0
        self.watch = AirWatch(Settings().broker, "test")

    async def publish(self, msg: Utterable) -> None:
        self.published.append(msg)

    async def queued(self) -> int:
        return self.waiting

    async def aclose(self) -> None:
        pass


def _runner(tmp_path: Path, toml: str) -> tuple[ShowRunner, Queue]:
    (tmp_path / "show.toml").write_text(toml)
    runner = ShowRunner(Settings(), load(tmp_path / "show.toml"), tmp_path / "state.json")
    queue = Queue()
    runner._feeder = queue  # type: ignore[assignment]
    queue.watch.last_end -= 3600  # a long silence
    return runner, queue


ROTATION = """
idle_after_s = 1
no_repeat_s = 600
rephrase = {rephrase}
[[item]]
name = "hello"
idle = true
say = "Hello there."
{topic}
[[item]]
name = "stories"
idle = true
folder = "stories"
"""
TOPIC = """[[item]]
name = "space"
idle = true
topic = "A fact about space."
"""


def _picks(tmp_path: Path, n: int, *, rephrase: bool, topic: bool) -> list[Utterable]:
    (tmp_path / "stories").mkdir()
    (tmp_path / "stories" / "b.txt").write_text("Second story.")
    (tmp_path / "stories" / "a.txt").write_text("First story.")
    runner, queue = _runner(tmp_path, ROTATION.format(rephrase=str(rephrase).lower(),
                                                      topic=TOPIC if topic else ""))

    async def picks() -> list[Utterable]:
        for _ in range(n):
            queue.watch.last_end -= 3600
            await runner._idle_pick()
        return queue.published

    out = asyncio.run(picks())
    assert len({m.id for m in out}) == len(out)
    return out


def _said(out: list[Utterable]) -> list[tuple[str, str, str | None]]:
    return [(m.text if isinstance(m, SpeakMessage) else m.prompt, type(m).__name__,
             getattr(m, "system", None)) for m in out]


def test_the_rotation_passes_over_what_was_said_lately(tmp_path: Path) -> None:
    """A topic is asked again (the model's words differ each time); the rest wait out the
    window: a folder's scripts in turn, and nothing twice."""
    out = _picks(tmp_path, 7, rephrase=False, topic=True)
    space = ("A fact about space.", "AskMessage", SYSTEM)
    assert _said(out) == [("Hello there.", "SpeakMessage", None), space,
                          ("First story.", "SpeakMessage", None), space,
                          ("Second story.", "SpeakMessage", None), space, space]


def test_with_rephrase_what_was_said_lately_is_said_anew(tmp_path: Path) -> None:
    out = _picks(tmp_path, 5, rephrase=True, topic=False)
    assert _said(out) == [("Hello there.", "SpeakMessage", None),
                          ("First story.", "SpeakMessage", None),
                          ("Second story.", "SpeakMessage", None),
                          ("Hello there.", "AskMessage", REPHRASE),
                          ("First story.", "AskMessage", REPHRASE)]


def test_a_scheduled_item_waits_for_room_and_is_skipped_when_too_late(tmp_path: Path) -> None:
    runner, queue = _runner(tmp_path, """
late_s = 30
[[item]]
name = "news"
every = "10m"
say = "The news."
""")

    async def run() -> None:
        runner._due["news"] = runner._now() - timedelta(seconds=5)
        queue.waiting = 1  # an operator's text waits: the show holds back
        await runner.tick()
        assert queue.published == []
        queue.waiting = 0
        await runner.tick()
        assert [m.text for m in queue.published] == ["The news."]  # type: ignore[union-attr]
        runner._due["news"] = runner._now() - timedelta(seconds=45)
        queue.waiting = 1
        await runner.tick()
        queue.waiting = 0
        await runner.tick()  # its time is 45 s ago: too late
        assert len(queue.published) == 1 and runner._pending == []

    runner._due = {}
    asyncio.run(run())
    assert isinstance(queue.published[0], SpeakMessage)
