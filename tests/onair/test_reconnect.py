"""The reconnect backoff ends when a server that refused connections accepts them again, and
only then: a server that stays down (or never went down) lets the backoff run its course.

The probes are real TCP connections; the backoff's waits are not: `stopping` is an event
whose wait returns at once and counts the probe intervals, so what is checked is which
interval the backoff returns in, not how fast this machine runs it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from avatarcast.onair.reconnect import PROBE_INTERVAL_S, backoff


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Intervals(threading.Event):
    """`stopping` for the backoff: each wait is one probe interval gone by at once, calling
    `during(k)` in interval k (from 1); after `limit` intervals it stops the backoff."""

    def __init__(self, limit: int, during: Callable[[int], None] = lambda k: None) -> None:
        super().__init__()
        self.limit, self.during = limit, during
        self.waited: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.append(timeout)
        self.during(len(self.waited))
        if len(self.waited) >= self.limit:
            self.set()
        return self.is_set()


def _connections(server: socket.socket) -> int:
    """How many connections the server has had (all waiting to be accepted)."""
    server.setblocking(False)
    n = 0
    while True:
        try:
            server.accept()[0].close()
        except BlockingIOError:
            return n
        n += 1


def test_a_server_back_before_the_first_probe_interval_ends_the_backoff() -> None:
    port = _free_port()
    servers: list[socket.socket] = []

    def back(k: int) -> None:  # refused at the start of the backoff, back in its first interval
        if k == 1:
            servers.append(socket.create_server(("127.0.0.1", port)))

    stopping = _Intervals(limit=5, during=back)
    try:
        backoff(600, stopping, [("127.0.0.1", port)])
        # Back after the first interval's probe, not run on until stopped.
        assert stopping.waited == [PROBE_INTERVAL_S] and not stopping.is_set()
        assert _connections(servers[0]) == 1  # one probe found it back
    finally:
        for s in servers:
            s.close()


def test_a_server_that_stays_down_keeps_the_backoff() -> None:
    stopping = _Intervals(limit=3)
    backoff(600, stopping, [("127.0.0.1", _free_port())])
    assert stopping.waited == [PROBE_INTERVAL_S] * 3  # ran on until stopped


def test_a_server_that_accepts_all_along_is_not_hammered() -> None:
    """Connections accepted but the stream refused (a wrong key, say): wait the backoff out,
    with one probe per interval (and one at the start)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        stopping = _Intervals(limit=3)
        backoff(600, stopping, [("127.0.0.1", server.getsockname()[1])])
        assert stopping.waited == [PROBE_INTERVAL_S] * 3  # ran on until stopped
        assert _connections(server) == 1 + 3
