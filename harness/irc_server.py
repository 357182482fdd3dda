"""A local IRC server speaking Twitch's dialect, for the chat tests, in the test's own event
loop: it takes CAP REQ / PASS / NICK / JOIN (refusing a wrong token with Twitch's NOTICE),
records every line each connection sent, and lets the test send lines to the clients (tagged
PRIVMSG, USERNOTICE, CLEARCHAT, CLEARMSG, PING, RECONNECT) or drop their connections."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TwitchIrcServer:
    token: str | None = None  # the token it accepts (None: any login, anonymous too)
    port: int = 0
    received: list[list[str]] = field(default_factory=list)  # per connection, in order

    async def __aenter__(self) -> TwitchIrcServer:
        self._writers: list[asyncio.StreamWriter] = []
        self._heard = asyncio.Event()  # set at each line received
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.drop()
        self._server.close()
        await self._server.wait_closed()

    async def send(self, line: str) -> None:
        """To every client connected now."""
        for w in list(self._writers):
            w.write(line.encode() + b"\r\n")
            with contextlib.suppress(ConnectionError):
                await w.drain()

    def drop(self) -> None:
        """Close every connection (as a server that went away)."""
        for w in self._writers:
            w.close()
        self._writers.clear()

    async def wait_joined(self, connection: int, limit_s: float = 10) -> None:
        await self.wait_line(connection, "JOIN ", limit_s)

    async def wait_line(self, connection: int, start: str, limit_s: float = 10) -> None:
        """Until connection number `connection` (0: the first) sent a line starting so."""
        async with asyncio.timeout(limit_s):
            while not (len(self.received) > connection and any(
                    x.startswith(start) for x in self.received[connection])):
                self._heard.clear()
                await self._heard.wait()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mine: list[str] = []
        self.received.append(mine)
        self._writers.append(writer)
        password = None
        try:
            while raw := await reader.readline():
                line = raw.decode().rstrip("\r\n")
                mine.append(line)
                self._heard.set()
                if line.startswith("PASS "):
                    password = line[5:]
                elif line.startswith("NICK "):
                    nick = line[5:]
                    if self.token is not None and password != f"oauth:{self.token}":
                        writer.write(b":tmi.twitch.tv NOTICE * :Login authentication "
                                     b"failed\r\n")
                        await writer.drain()
                        break
                    writer.write(f":tmi.twitch.tv 001 {nick} :Welcome, GLHF!\r\n".encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            if writer in self._writers:
                self._writers.remove(writer)


class ThreadedIrc:
    """The server on a thread of its own, for tests whose clients are other processes: `with`
    starts it; `send` and `wait_joined` are called from the test's thread."""

    def __init__(self, token: str | None = None) -> None:
        self.server = TwitchIrcServer(token=token)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.server:
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ThreadedIrc:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the IRC server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def port(self) -> int:
        return self.server.port

    def _call(self, coro: Coroutine[Any, Any, None], limit_s: float) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(limit_s + 5)

    def send(self, line: str) -> None:
        self._call(self.server.send(line), 5)

    def wait_joined(self, connection: int, limit_s: float = 30) -> None:
        self._call(self.server.wait_joined(connection, limit_s), limit_s)
