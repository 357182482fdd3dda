"""One FFmpeg child process kept running: started in a session of its own, its stderr read,
restarted with backoff when it ends, stopped on close. The encoder has one, and so has each
relay of the fan-out.

Its user says what a run is: the command line (made anew for each run, so a recording gets a
new file); `serve`, which works with the process and returns once the run is over (the
encoder waits for FFmpeg to exit, a relay feeds it until its stream ends); and what to log
when a run ends (`on_exit`, told how long it ran and how long the wait before the next is).

Threads: `start` starts the supervising thread (named by the user), the only one that starts,
serves and ends runs. Each run's stderr is read on a thread of its own, which logs FFmpeg's
lines (warnings as warnings, errors at the user's level) and keeps the last error in
`last_error`; the user's threads may note an error of their own (`note_error`). The other
status fields (`restarts`, `proc`, `run_started`) are written on the supervising thread only;
all are read from anywhere. `close` (or `stop`, `join`, `kill`, for a user that does something
in between: the encoder closes its relays before it kills a child still running) is called
from the user's thread.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from ..infra.redact import global_redactor
from ..infra.threads import start_thread
from .ffmpeg_args import log_line
from .reconnect import Address, backoff

Proc = subprocess.Popen[bytes]


@dataclass(frozen=True)
class RestartPolicy:
    """When a run that ended is followed by the next: `min_s`, doubled with each run in a row
    that ended before `stable_after_s`, up to `max_s`. After a run that held, the next starts
    at once; with `always_wait` (a relay's) every restart waits, one step further along:
    `min_s` after a run that held, twice that after the first failed one, and so on."""

    min_s: float
    max_s: float
    stable_after_s: float
    always_wait: bool = False

    def delay(self, failures: int) -> float:
        """Seconds before the next run, after `failures` runs in a row that did not hold."""
        step = failures + 1 if self.always_wait else failures
        if step == 0:
            return 0.0
        # The exponent is capped: after days of failures the float must not overflow.
        return max(self.min_s, min(self.max_s, self.min_s * 2.0 ** min(step - 1, 64)))


@dataclass(frozen=True)
class Exit:
    """How a run ended, as its user's `on_exit` is told."""

    code: int  # FFmpeg's exit status (negative: killed by that signal)
    ran_s: float
    stopping: bool  # closing: no run follows
    failures: int  # runs in a row that did not hold, this one included (0: it held)
    delay_s: float  # the wait before the next run (0: at once)


class ChildStatus:
    """What a component that runs an FfmpegChild (the encoder, a relay) tells of it."""

    _child: FfmpegChild

    @property
    def restarts(self) -> int:
        return self._child.restarts

    @property
    def last_error(self) -> str | None:
        return self._child.last_error


class FfmpegChild:
    """One FFmpeg process at a time, restarted by `policy` until closed.

    `serve(proc)` runs on the supervising thread once the process is started; it returns
    True when the run is over by itself (FFmpeg exited, or its input broke): that counts as a
    restart and waits as the policy says; False when its user ended it to start anew at once
    (not counted, no wait). Then the child's stdin is closed, it gets `exit_s` to exit before
    it is killed, and its stderr reader `log_join_s` to finish."""

    def __init__(
        self, *, args: Callable[[], list[str]], serve: Callable[[Proc], bool],
        on_exit: Callable[[Exit], None], policy: RestartPolicy, servers: list[Address],
        log: logging.Logger, log_prefix: str, errors_at: int, thread: str, log_thread: str,
        read_stdout: bool = False, exit_s: float = 5.0, log_join_s: float = 5.0,
    ) -> None:
        self._args, self._serve, self._on_exit = args, serve, on_exit
        self._policy = policy
        self._servers = servers  # probed while waiting: a server back ends the wait early
        self._log, self._log_prefix, self._errors_at = log, log_prefix, errors_at
        self._thread_name, self._log_thread = thread, log_thread
        self._read_stdout = read_stdout
        self._exit_s, self._log_join_s = exit_s, log_join_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.proc: Proc | None = None  # the current run's, or the last one's
        self.run_started: float | None = None  # monotonic start of the current run
        self.restarts = 0
        self.last_error: str | None = None  # this run's last error, or the one that ended it

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        self._thread = start_thread(self._supervise, name=self._thread_name, daemon=True)

    def note_error(self, error: str) -> None:
        """An error seen by the user (a broken pipe): kept unless FFmpeg said why first."""
        self.last_error = self.last_error or error

    def stop(self) -> None:
        """No run after this one; a wait between runs ends at once."""
        self._stopping.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def kill(self) -> None:
        """Kills a child still running (one that outlived `join`), and reaps it."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def close(self, timeout: float) -> None:
        self.stop()
        self.join(timeout)
        self.kill()

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            code, by_itself = self._run_once(started)
            ran = time.monotonic() - started
            if self._stopping.is_set():
                self._on_exit(Exit(code, ran, True, failures, 0.0))
                return
            if not by_itself:
                continue
            self.restarts += 1
            failures = 0 if ran >= self._policy.stable_after_s else failures + 1
            delay = self._policy.delay(failures)
            self._on_exit(Exit(code, ran, False, failures, delay))
            if delay > 0:
                backoff(delay, self._stopping, self._servers)

    def _run_once(self, started: float) -> tuple[int, bool]:
        self.run_started = started
        proc = subprocess.Popen(
            self._args(), stdin=subprocess.PIPE, stderr=subprocess.PIPE,
            stdout=subprocess.PIPE if self._read_stdout else subprocess.DEVNULL,
            # Its own process group: a Ctrl-C or a group-wide SIGTERM reaches the daemon only,
            # which then ends the stream cleanly by closing FFmpeg's input.
            start_new_session=True,
        )
        self.proc = proc
        self.last_error = None  # before the reader starts: none of this run's errors is lost
        assert proc.stdin is not None and proc.stderr is not None
        reader = start_thread(self._read_log, proc.stderr, name=self._log_thread, daemon=True)
        try:
            by_itself = self._serve(proc)
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            try:
                proc.wait(self._exit_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader.join(self._log_join_s)
        return proc.returncode, by_itself

    def _read_log(self, pipe: IO[bytes]) -> None:
        redact = global_redactor()
        for raw in pipe:
            line = redact(raw.decode(errors="replace").rstrip())
            error, text = log_line(line)
            if not text:
                continue
            level = self._errors_at if error else logging.WARNING
            self._log.log(level, "%sffmpeg: %s", self._log_prefix, text)
            if error:
                self.last_error = text
