"""A frozen owner, as a viewer sees it (part of `python -m bench fleet`): the worker that runs
the channel is stopped with SIGSTOP, with its children (a paused VM: no connection closes),
while it speaks; the standby takes over once the broker gives up on the frozen connections;
then the old owner is woken (SIGCONT), a second after video is back at the client. Measured:
the freeze to the standby on air and to video at the client, the largest gap in the video at
the client in the 10 s after the wake (the woken worker must leave the new owner's stream
alone), and the woken worker's CPU in those 10 s."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from harness.daemon import DaemonProc, QueueNames, publish

AFTER_WAKE_S = 10.0
WAKE_AFTER_S = 1.0  # after video is back at the client
TEXT = ("This long message keeps the avatar talking for a good while, sentence after sentence, "
        "so that its worker is busy rendering and speaking when it freezes. ") * 2


class Client(Protocol):
    times: list[float]

    def resumed_after(self, t: float, limit_s: float = 60) -> float | None: ...


def tree(pid: int) -> list[int]:
    """A process and its descendants, from /proc."""
    out = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out += [p for c in children.read_text().split() for p in tree(int(c))]
    return out


def cpu_s(pid: int) -> float:
    """User and system CPU of one process so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, sig)


def largest_gap(times: list[float], start: float, end: float) -> float:
    ts = [t for t in times if start <= t <= end]
    return max((b - a for a, b in itertools.pairwise(ts)), default=end - start)


def freeze_once(owner: DaemonProc, standby: DaemonProc, queues: QueueNames, client: Client,
                owner_of_live: Callable[[list[DaemonProc]], DaemonProc], tag: str
                ) -> dict[str, Any]:
    """One round: the owner frozen while it speaks, the standby on air, the owner woken."""
    for i in range(2):
        publish(queues.channel("live").speak, {"type": "speak", "id": f"{tag}-{i}", "text": TEXT})
    owner.wait_for(lambda s: bool(s["channels"]["live"].get("on_air")), 60, "speaking")
    time.sleep(1.5)
    pids = tree(owner.proc.pid)
    _signal(pids, signal.SIGSTOP)
    frozen = time.time()
    try:
        owner_of_live([standby])
        taken = time.time()
        resumed = client.resumed_after(frozen)
        # Woken soon after the new owner is on air, while it starts its first text (its
        # busiest moment): a burst from the woken worker then shows at the client.
        time.sleep(WAKE_AFTER_S)
        before = cpu_s(owner.proc.pid)
    finally:
        _signal(pids, signal.SIGCONT)
    woken = time.time()
    time.sleep(AFTER_WAKE_S)
    return {"standby_on_air_s": taken - frozen,
            "video_at_client_s": None if resumed is None else resumed - frozen,
            "gap_after_wake_s": largest_gap(client.times, woken, woken + AFTER_WAKE_S),
            "woken_cpu_s": cpu_s(owner.proc.pid) - before}
