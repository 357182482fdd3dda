"""The reconnect backoff ends when a server that refused connections accepts them again, and
only then: a server that stays down (or never went down) lets the backoff run its course."""

from __future__ import annotations

import socket
import threading
import time

from avatarcast.onair.reconnect import backoff


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _backoff_in_thread(seconds: float, port: int) -> tuple[threading.Thread, threading.Event]:
    stopping = threading.Event()
    t = threading.Thread(target=backoff, args=(seconds, stopping, [("127.0.0.1", port)]))
    t.start()
    return t, stopping


def test_a_server_back_before_the_first_probe_interval_ends_the_backoff() -> None:
    port = _free_port()
    t, stopping = _backoff_in_thread(600, port)
    time.sleep(0.2)  # refused at the start of the backoff, back inside the first 0.5 s
    with socket.create_server(("127.0.0.1", port)):
        t.join(30)
        returned = not t.is_alive()
        stopping.set()
        t.join()
    assert returned, "the backoff ran on although the server was back"


def test_a_server_that_stays_down_keeps_the_backoff() -> None:
    port = _free_port()
    t, stopping = _backoff_in_thread(600, port)
    t.join(1.5)  # three probe intervals
    still_waiting = t.is_alive()
    stopping.set()
    t.join(5)
    assert still_waiting and not t.is_alive()


def test_a_server_that_accepts_all_along_is_not_hammered() -> None:
    """Connections accepted but the stream refused (a wrong key, say): wait the backoff out."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        t, stopping = _backoff_in_thread(600, server.getsockname()[1])
        t.join(1.5)
        still_waiting = t.is_alive()
        stopping.set()
        t.join(5)
    assert still_waiting
