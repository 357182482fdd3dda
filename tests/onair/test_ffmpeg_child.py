"""One FFmpeg child kept running, with real FFmpeg processes: one that exits by itself, one
that fails on a bad argument, one killed with SIGKILL, one that ignores its stdin at close.
What is checked is what its users see: restarts counted, the last error taken from FFmpeg's
stderr (warnings are not errors), the wait between runs, and no process left after close.
Times are only lower bounds that no machine can undercut; every wait for an event is long."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tenacity import RetryCallState, wait_exponential

from avatarcast.onair.ffmpeg_child import Exit, FfmpegChild, Proc, RestartPolicy

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
BASE = [FFMPEG, "-hide_banner", "-nostats", "-loglevel", "level+warning"]
SHORT = [*BASE, "-f", "lavfi", "-i", "anullsrc", "-t", "0.2", "-f", "null", "-"]
BAD_ARGUMENT = [*BASE, "-f", "lavfi", "-i", "anullsrc", "-badopt", "x", "-f", "null", "-"]
WARNS = [*BASE, "-f", "s16le", "-ar", "8000", "-ac", "1", "-i", "/dev/zero", "-t", "0.1",
         "-f", "null", "-"]
FOREVER = [*BASE, "-re", "-f", "lavfi", "-i", "anullsrc", "-f", "null", "-"]  # deaf to stdin
READS_STDIN = [*BASE, "-f", "s16le", "-ar", "8000", "-ch_layout", "mono", "-i", "pipe:0",
               "-f", "null", "-"]
LOG = logging.getLogger("tests.ffmpeg_child")


class Watched:
    """A child and what it told: each run's start (time.monotonic), pid, and how it ended,
    with `last_error` as it was then."""

    def __init__(self, args: list[str], policy: RestartPolicy, *, exit_s: float = 5.0,
                 serve: Callable[[Proc], bool] | None = None) -> None:
        self.starts: list[float] = []
        self.pids: list[int] = []
        self.exits: list[tuple[Exit, str | None]] = []
        self._args = args
        self.child = FfmpegChild(
            args=self._command, serve=serve or self._serve, on_exit=self._ended,
            policy=policy, servers=[], log=LOG, log_prefix="test: ", errors_at=logging.ERROR,
            thread="test-child", log_thread="test-child-log", exit_s=exit_s)

    def _command(self) -> list[str]:
        self.starts.append(time.monotonic())
        return self._args

    def _serve(self, proc: Proc) -> bool:
        self.pids.append(proc.pid)
        while proc.poll() is None and not self.child.stopping:
            time.sleep(0.02)
        return True

    def _ended(self, end: Exit) -> None:
        self.exits.append((end, self.child.last_error))

    def until(self, what: Callable[[], bool], limit_s: float = 30.0) -> None:
        deadline = time.monotonic() + limit_s
        while not what():
            assert time.monotonic() < deadline, "waited too long"
            time.sleep(0.02)


@pytest.fixture
def watched() -> Iterator[list[Watched]]:
    """Children started by a test; closed at its end, whatever became of the test."""
    made: list[Watched] = []
    yield made
    for w in made:
        w.child.close(10.0)


def _watch(made: list[Watched], args: list[str], policy: RestartPolicy, *,
           exit_s: float = 5.0) -> Watched:
    w = Watched(args, policy, exit_s=exit_s)
    made.append(w)
    w.child.start()
    return w


def test_a_child_that_exits_is_restarted_after_the_policys_wait(watched: list[Watched]) -> None:
    w = _watch(watched, SHORT, RestartPolicy(0.3, 0.6, stable_after_s=30.0))
    w.until(lambda: len(w.starts) >= 3)
    w.child.close(10.0)
    assert w.child.restarts >= 2
    ends = [end for end, _ in w.exits if not end.stopping]
    assert [e.code for e in ends[:2]] == [0, 0]
    assert [(e.failures, e.delay_s) for e in ends[:2]] == [(1, 0.3), (2, 0.6)]
    # Each run started no sooner than the wait after the one before it ended.
    assert w.starts[1] - w.starts[0] >= 0.3
    assert w.starts[2] - w.starts[1] >= 0.6


@pytest.mark.parametrize(("args", "code", "error", "level", "line"), [
    (BAD_ARGUMENT, 1, "Error splitting the argument list: Option not found", logging.ERROR,
     "test: ffmpeg: Unrecognized option 'badopt'."),
    (WARNS, 0, None, logging.WARNING, "test: ffmpeg: Guessed Channel Layout"),
], ids=["a bad argument is an error", "a warning is not"])
def test_last_error_is_ffmpegs_last_error_line(
        watched: list[Watched], caplog: pytest.LogCaptureFixture, args: list[str], code: int,
        error: str | None, level: int, line: str) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    w = _watch(watched, args, RestartPolicy(0.2, 0.2, stable_after_s=30.0))
    w.until(lambda: len(w.exits) >= 1)
    w.child.close(10.0)
    end, last_error = w.exits[0]
    assert (end.code, end.stopping, last_error) == (code, False, error)
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOG.name]
    assert any(lv == level and m.startswith(line) for lv, m in logged), logged


def test_a_child_killed_is_restarted_and_close_kills_one_deaf_to_its_stdin(
        watched: list[Watched]) -> None:
    w = _watch(watched, FOREVER, RestartPolicy(0.2, 0.2, stable_after_s=30.0), exit_s=0.5)
    w.until(lambda: len(w.pids) == 1)
    os.kill(w.pids[0], signal.SIGKILL)
    w.until(lambda: len(w.pids) == 2)
    assert w.child.restarts == 1
    (end, _), = w.exits
    assert end.code == -signal.SIGKILL and end.failures == 1
    second = w.child.proc
    assert second is not None and second.pid == w.pids[1] and second.poll() is None
    w.child.close(10.0)
    # Its stdin closed, it went on: killed once exit_s ran out.
    assert second.poll() == -signal.SIGKILL
    assert w.exits[-1][0].stopping and w.child.restarts == 1
    assert "test-child" not in {t.name for t in threading.enumerate()}


def test_close_ends_a_child_that_reads_its_stdin_cleanly(watched: list[Watched]) -> None:
    w = _watch(watched, READS_STDIN, RestartPolicy(0.2, 0.2, stable_after_s=30.0))
    w.until(lambda: len(w.pids) == 1)
    w.child.close(10.0)
    (end, error), = w.exits
    assert end.stopping and end.code == 0 and error is None
    assert w.child.restarts == 0


def test_a_run_its_user_ends_restarts_at_once_uncounted(watched: list[Watched]) -> None:
    served: list[int] = []

    def serve(proc: Proc) -> bool:
        served.append(proc.pid)
        if len(served) == 1:
            return False  # as a relay given a new stream: closed, and started anew
        while proc.poll() is None and not w.child.stopping:
            time.sleep(0.02)
        return True

    w = Watched(READS_STDIN, RestartPolicy(30.0, 30.0, stable_after_s=30.0), serve=serve)
    watched.append(w)
    w.child.start()
    w.until(lambda: len(served) == 2)  # no 30 s wait in between
    w.child.close(10.0)
    assert w.child.restarts == 0
    assert [end.stopping for end, _ in w.exits] == [True]


def test_the_encoders_policy_is_tenacitys_exponential_wait() -> None:
    policy = RestartPolicy(0.5, 10.0, stable_after_s=10.0)
    wait = wait_exponential(multiplier=0.5, min=0.5, max=10.0)
    state = RetryCallState(None, None, (), {})
    assert policy.delay(0) == 0.0  # after a run that held: at once
    for n in range(1, 12):
        state.attempt_number = n
        assert policy.delay(n) == wait(state)
    assert policy.delay(10_000) == 10.0  # no overflow after days of failures


def test_a_relays_policy_waits_after_every_run_doubling_from_its_minimum() -> None:
    policy = RestartPolicy(0.5, 10.0, stable_after_s=10.0, always_wait=True)
    # The relay's loop before FfmpegChild: the delay starts at min, doubles (up to max) after
    # a failed run, goes back to min after one that held.
    delay, held = 0.5, [False, False, True, False, False, False, False, False, True]
    failures = 0
    for ok in held:
        delay = 0.5 if ok else min(10.0, delay * 2)
        failures = 0 if ok else failures + 1
        assert policy.delay(failures) == delay
    assert policy.delay(10_000) == 10.0
