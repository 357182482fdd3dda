"""`avatarcast serve-face`: a face server for remote animators (wire format: remote_wire.py).

It renders with its own animator (face.animator: MuseTalk on a GPU box, lite otherwise) the
avatars prepared in its avatars_dir, one request at a time, and streams each frame back as
it is rendered: the rectangle that differs from the idle frame.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from ...infra.threads import iterate_in_thread
from ...settings import Settings
from .. import cache
from ..prepare import load
from ..runtime import Avatar, for_output
from .base import FaceAnimator
from .remote_wire import CONTENT_TYPE, encode_patch, parse_body
from .select import choose
from .service import make_animator

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 2**20  # minutes of speech, base64


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


class FaceServer:
    """Owned by the event loop; animators run on one thread, one request at a time."""

    def __init__(self, settings: Settings) -> None:
        self._s = settings
        name, why = choose(settings.face)
        if name == "remote":
            name, why = "lite", "face.animator is remote: a face server renders itself"
        self.animator_name = name
        log.info("face server animator: %s (%s)", name, why)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="face-server")
        self._lock = asyncio.Lock()
        self._loaded: dict[tuple[str, int, int, int], tuple[Avatar, FaceAnimator]] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_post("/v1/render", self._render)
        app.router.add_get("/healthz", self._health)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"animator": self.animator_name,
                                  "avatars_loaded": len(self._loaded)})

    def _avatar(self, avatar_id: str, sha: str, w: int, h: int, fps: int
                ) -> tuple[Avatar, FaceAnimator]:
        """Blocking: loads (once per id and output) the avatar and an animator for it."""
        key = (avatar_id, w, h, fps)
        if key in self._loaded:
            return self._loaded[key]
        directory = self._s.avatar.avatars_dir / cache.check_id(avatar_id)
        manifest = cache.read_manifest(directory)
        if manifest is None:
            raise LookupError(f"avatar {avatar_id!r} is not prepared on this face server; run "
                              f"`avatarcast prepare --id {avatar_id} ...` here with the same "
                              "source")
        if manifest.get("source", {}).get("sha256") != sha:
            raise PermissionError(f"avatar {avatar_id!r} here was prepared from a different "
                                  "source; prepare it from the same file on both sides")
        avatar = for_output(load(directory), w, h, keep_rgb=self.animator_name == "musetalk")
        animator = make_animator(self.animator_name, self._s.face, fps)
        animator.load(avatar)
        self._loaded[key] = (avatar, animator)
        return avatar, animator

    async def _render(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            cycle, audio, mouth = parse_body(body)
            who = body["avatar"]
            w, h, fps = int(body["width"]), int(body["height"]), int(body["fps"])
            avatar_id, sha = str(who["id"]), str(who.get("source_sha256", ""))
            if fps <= 0 or abs(len(audio) - len(cycle) * 16_000 / fps) > 16_000 / fps:
                raise ValueError(f"audio_16k must hold {len(cycle)} frames of 16 kHz audio")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _error(400, f"bad request: {exc}")
        async with self._lock:  # one render at a time: the animator has one thread
            loop = asyncio.get_running_loop()
            try:
                avatar, animator = await loop.run_in_executor(
                    self._executor, self._avatar, avatar_id, sha, w, h, fps)
            except LookupError as exc:
                return _error(404, str(exc))
            except PermissionError as exc:
                return _error(409, str(exc))
            except ValueError as exc:
                return _error(400, str(exc))
            idle = avatar.idle.frames
            if any(c >= len(idle) for c in cycle):
                return _error(400, f"cycle index beyond the avatar's {len(idle)} frames")

            def patches() -> Any:
                k = 0
                for batch in animator.render(audio, cycle, mouth):
                    out = b"".join(encode_patch(k + i, f, idle[cycle[k + i]])
                                   for i, f in enumerate(batch))
                    k += len(batch)
                    yield out

            resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
            await resp.prepare(request)
            try:
                async for chunk in iterate_in_thread(self._executor, patches):
                    await resp.write(chunk)
            except ConnectionError:
                log.info("a client left during its render")
                return resp
            await resp.write_eof()
            return resp


async def serve(settings: Settings, host: str, port: int) -> None:
    server = FaceServer(settings)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("face server on http://%s:%d/v1/render", host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
