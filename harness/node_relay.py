"""A TCP relay to the real broker: a RabbitMQ node that a test can lose (`stop` closes its
listener and resets every connection through it, as a node that dies does), while the broker
itself stays up for the other tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Relay:
    """A TCP relay to the real broker: a node that can be lost (`stop` closes its listener
    and every connection through it, as a node that dies does)."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.accepted = 0

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        w.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", 5672)
        self._links |= {writer, up_w}
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._links:
            w.transport.abort()  # (a reset, as from a dead node)


@contextlib.asynccontextmanager
async def relay() -> AsyncIterator[Relay]:
    r = Relay()
    await r.start()
    try:
        yield r
    finally:
        r.stop()
