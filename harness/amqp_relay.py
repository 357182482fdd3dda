"""An AMQP 0-9-1 relay in front of the real broker that can lose a client's acks: it passes
every frame both ways, and while `drop_acks` is set it swallows the basic.ack frames the
client sends (the broker's own confirms still reach the client). A worker connected through
it airs a text, believes it acked it, and the broker never hears so: the window between "on
air" and "the ack reached the broker", made to last as long as a test needs.

Frames (spec section 4.2.3): type (1 byte), channel (2), payload size (4), payload, 0xCE; a
method frame's payload starts with its class id and method id (basic.ack: 60, 80). Runs its
own event loop on a thread; `start`/`stop` from the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading

PROTOCOL_HEADER = 8  # b"AMQP\x00\x00\x09\x01"
METHOD_FRAME = 1
BASIC_ACK = (60, 80)


class AmqpRelay:
    def __init__(self, broker_port: int = 5672) -> None:
        self.broker_port = broker_port
        self.port = 0
        self.drop_acks = False
        self.dropped = 0  # basic.ack frames swallowed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="amqp-relay")
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._links):
                w.transport.abort()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.broker_port)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, up_w}
        await asyncio.gather(self._upstream(reader, up_w), self._pipe(up_r, writer))

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        w.transport.abort()

    async def _upstream(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        """Client to broker, frame by frame."""
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            w.write(await r.readexactly(PROTOCOL_HEADER))
            while True:
                head = await r.readexactly(7)
                kind, _channel, size = struct.unpack(">BHI", head)
                rest = await r.readexactly(size + 1)
                if (self.drop_acks and kind == METHOD_FRAME and size >= 4
                        and struct.unpack(">HH", rest[:4]) == BASIC_ACK):
                    self.dropped += 1
                    continue
                w.write(head + rest)
                await w.drain()
        w.transport.abort()
