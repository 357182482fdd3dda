"""An aiohttp application on a thread of its own, for the tests' local servers: started with
`with`, stopped on leaving it, so a daemon process (or the test itself) can talk to it."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ThreadedApp:
    """Subclasses add their routes in `routes`; `port` is set before `__enter__`."""

    port: int

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def __enter__(self) -> ThreadedApp:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=64 * 2**20)
        self.routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
