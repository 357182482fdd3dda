"""Is there an RTMP server at this URL? A TCP (or TLS, for rtmps://) connection and the RTMP
handshake's first half: C0 and C1 out, S0 and S1 back (RTMP spec section 5.2). Nothing is
published, so a live stream on the same key is not disturbed."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import time
from urllib.parse import urlsplit

_C1_SIZE = 1536


class RtmpCheckError(Exception):
    pass


def handshake(url: str, timeout_s: float = 5.0) -> float:
    """Seconds the handshake took; raises RtmpCheckError with what went wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("rtmp", "rtmps") or not parts.hostname:
        raise RtmpCheckError("not an rtmp:// or rtmps:// URL")
    port = parts.port or (443 if parts.scheme == "rtmps" else 1935)
    t0 = time.monotonic()
    try:
        raw = socket.create_connection((parts.hostname, port), timeout=timeout_s)
    except OSError as exc:
        raise RtmpCheckError(f"cannot connect to {parts.hostname}:{port} ({exc})") from None
    with raw:
        sock: socket.socket = raw
        try:
            if parts.scheme == "rtmps":
                sock = ssl.create_default_context().wrap_socket(
                    raw, server_hostname=parts.hostname)
            c1 = struct.pack(">II", 0, 0) + os.urandom(_C1_SIZE - 8)
            sock.sendall(b"\x03" + c1)
            got = b""
            while len(got) < 1 + _C1_SIZE:
                chunk = sock.recv(1 + _C1_SIZE - len(got))
                if not chunk:
                    break
                got += chunk
        except (OSError, ssl.SSLError) as exc:
            raise RtmpCheckError(f"{parts.hostname}:{port} broke off the handshake "
                                 f"({exc})") from None
    if len(got) < 1 + _C1_SIZE:
        raise RtmpCheckError(f"{parts.hostname}:{port} answered {len(got)} bytes, not an "
                             "RTMP handshake")
    if got[0] != 3:
        raise RtmpCheckError(f"{parts.hostname}:{port} speaks RTMP version {got[0]}, not 3")
    return time.monotonic() - t0
