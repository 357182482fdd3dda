"""Waiting to reconnect to an RTMP server: a backoff that ends early when a server that was
refusing connections accepts them again, so the stream is back within a probe interval of the
server's return, without hammering a server that stays down (one TCP connect per interval)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.5
Address = tuple[str, int]


def rtmp_address(url: str) -> Address:
    """(host, port) of an RTMP URL; the stream key in its path is not needed for a probe."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "rtmps" else 1935
    return parts.hostname or "127.0.0.1", parts.port or default


def servers_accept(servers: list[Address], timeout: float = 0.3) -> bool:
    for host, port in servers:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError:
            return False
    return True


def backoff(seconds: float, stopping: threading.Event, servers: list[Address]) -> None:
    """Sleep `seconds`, cut short by `stopping` or by the servers coming back."""
    deadline = time.monotonic() + seconds
    # Look now, not only after the first interval: a server back within that interval would
    # otherwise never be seen as down, and the whole backoff would run out.
    was_down = bool(servers) and not servers_accept(servers)
    while not stopping.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stopping.wait(min(left, PROBE_INTERVAL_S))
        if not servers:
            continue
        if not servers_accept(servers):
            was_down = True
        elif was_down:
            log.info("the RTMP server accepts connections again; reconnecting now")
            return
