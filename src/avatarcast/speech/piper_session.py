"""Piper's ONNX session as the daemon runs it: its CPU arena given back after every run, and a
text's synthesis that can be called off in the middle of a sentence."""

from __future__ import annotations

import threading
from typing import Any

from .base import SpeechError


class Synthesis:
    """One text's synthesis, which the event loop may call off (`abort`: a skip, a channel gone
    off air): the sentence being inferred ends at once (ONNX Runtime's terminate flag, checked
    between the model's operators) and no other starts. A woken fleet worker whose channel
    went elsewhere used to infer the rest of its piece, seconds of both cores, beside the
    channel's new owner."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.aborted = False
        self._run: Any = None  # the RunOptions of the sentence being inferred

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            if self._run is not None:
                self._run.terminate = True

    def begin(self, run: Any) -> None:
        with self._lock:
            if self.aborted:
                raise SpeechError("synthesis called off", retryable=False)
            self._run = run

    def end(self) -> None:
        with self._lock:
            self._run = None


class ShrinkingSession:
    """An ONNX session whose CPU arena gives back what it holds at the end of every run.

    Without an arena, every activation is an allocation of its own; the daemon keeps blocks
    over 256 KB as mmaps of their own (infra.malloc), so each is mapped, faulted in page by
    page and unmapped: "Hello, I am live." took 163 ms instead of 90. With an arena kept
    whole, the largest activations ever held stay for the life of the process (+220 MB after
    a long text). Shrunk after each run, the arena maps once per sentence what the sentence
    needs at its peak, and lets it all go: 105-120 ms for that sentence, resident memory flat
    (measured on this 2-core machine).

    `job` is the synthesis its runs belong to (set by the one thread that runs them)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.job: Synthesis | None = None

    def run(self, outputs: Any, feeds: Any, run_options: Any = None) -> Any:
        import onnxruntime

        options = run_options or onnxruntime.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        job = self.job
        if job is None:
            return self._session.run(outputs, feeds, options)
        job.begin(options)
        try:
            return self._session.run(outputs, feeds, options)
        except Exception:
            if job.aborted:
                raise SpeechError("synthesis called off", retryable=False) from None
            raise
        finally:
            job.end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)
