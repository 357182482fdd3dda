"""A piper synthesis that its reader leaves (a skip, a channel gone off air) is called off at
once: the sentence being inferred is terminated inside ONNX Runtime and no other starts, so the
thread is free for the next text and no CPU goes to words nobody will hear."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from avatarcast.speech.piper import PiperSynthesizer

SENTENCE = ("The committee met on Tuesday to discuss the budget, the schedule and the staffing "
            "plan, and after a long debate they agreed to meet again next week. ")


class Watched:
    """The real ONNX session, each run recorded: (started, ended, how it ended)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.runs: list[list[Any]] = []
        self.inferring = threading.Event()  # set while a run is in progress

    def run(self, outputs: Any, feeds: Any, options: Any = None) -> Any:
        rec: list[Any] = [time.monotonic(), None, "done"]
        self.runs.append(rec)
        self.inferring.set()
        try:
            return self._inner.run(outputs, feeds, options)
        except Exception as exc:
            rec[2] = type(exc).__name__
            raise
        finally:
            rec[1] = time.monotonic()
            self.inferring.clear()


def test_leaving_a_synthesis_terminates_the_sentence_being_inferred(tmp_path: Path) -> None:
    async def main() -> tuple[Watched, float, list[str]]:
        piper = PiperSynthesizer(None, tmp_path, tmp_path)
        await piper.load()
        session = piper._voice(None).session
        watched = Watched(session._session)
        session._session = watched
        texts = []
        it = piper.synthesize(SENTENCE * 6, None)
        texts.append((await anext(it)).text)
        assert await asyncio.to_thread(watched.inferring.wait, 10)  # the next sentence's
        left = time.monotonic()
        await it.aclose()  # the reader leaves after the first sentence, the next one inferred
        await asyncio.get_running_loop().run_in_executor(piper._executor, lambda: None)
        # The next text is spoken whole.
        texts += [c.text async for c in piper.synthesize("Hello again.", None)]
        await piper.aclose()
        return watched, left, texts

    watched, left, texts = asyncio.run(main())
    runs = watched.runs
    before = [r for r in runs[:-1] if r[0] < left]
    assert texts[-1] == "Hello again." and len(before) < 6
    assert [r for r in runs[:-1] if r[0] >= left] == []  # nothing started once it was left
    in_flight = [r for r in before if r[1] > left]
    assert [r[2] for r in in_flight] == ["Fail"]  # the sentence then inferred: terminated
    assert runs[-1][2] == "done"
