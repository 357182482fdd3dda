"""`avatarcast serve-face`: a face server for remote animators (wire format: remote_wire.py).

It renders with its own animator (face.animator: MuseTalk on a GPU box, lite otherwise) the
avatars prepared in its avatars_dir, and streams each frame back as it is rendered: the
rectangle that differs from the idle frame. It trusts no caller: the output asked for is
bounded (face.server_max_width, face.server_max_height, MAX_FPS), the source is checked on every
request, at most face.server_max_avatars stay loaded, and a client that does not read holds up
no other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ...media.audio import Pcm
from ...settings import Settings
from .. import cache
from ..prepare import load
from ..runtime import Avatar, for_output
from .base import FaceAnimator
from .mouthtrack import MouthTrack
from .remote_wire import CONTENT_TYPE, encode_patch, parse_body
from .select import choose
from .service import make_animator

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 2**20  # minutes of speech, base64
MAX_FPS = 60  # video.fps's bound: no daemon asks for more

Key = tuple[str, int, int, int]  # avatar id, width, height, fps


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


@dataclass(eq=False)
class _Loaded:
    """An avatar loaded for one output, and the animator that renders it."""

    avatar: Avatar
    animator: FaceAnimator
    sha: str  # of the source it was prepared from, and how it is framed
    users: int = 0  # requests rendering with it now
    dropped: bool = False  # let go of; closed when its last user is done


class FaceServer:
    """Owned by the event loop. The animators run on one thread, a batch at a time: requests
    take turns there batch by batch, and each batch is written to its client off that thread,
    so a client that reads slowly (or not at all) waits alone."""

    def __init__(self, settings: Settings) -> None:
        self._s = settings
        name, why = choose(settings.face)
        if name == "remote":
            name, why = "lite", "face.animator is remote: a face server renders itself"
        self.animator_name = name
        log.info("face server animator: %s (%s)", name, why)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="face-server")
        self._loading = asyncio.Lock()  # one load at a time: an avatar is loaded once
        self._loaded: OrderedDict[Key, _Loaded] = OrderedDict()  # least recently used first

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_post("/v1/render", self._render)
        app.router.add_get("/healthz", self._health)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"animator": self.animator_name,
                                  "avatars_loaded": len(self._loaded)})

    def _output(self, body: dict[str, Any]) -> tuple[int, int, int]:
        """The output a request asks frames for, within this server's bounds (ValueError)."""
        w, h, fps = body["width"], body["height"], body["fps"]
        if not all(type(v) is int for v in (w, h, fps)):
            raise ValueError("width, height and fps must be integers")
        face = self._s.face
        for what, v, most in (("width", w, face.server_max_width),
                              ("height", h, face.server_max_height)):
            if not 64 <= v <= most or v % 2:
                raise ValueError(f"{what} {v} is not an even number from 64 to {most} "
                                 f"(face.server_max_{what})")
        if not 1 <= fps <= MAX_FPS:
            raise ValueError(f"fps {fps} is not from 1 to {MAX_FPS}")
        return w, h, fps

    def _source(self, avatar_id: str) -> tuple[str, str]:
        """Blocking: the sha256 of the source the avatar here was prepared from, and how it
        is framed (cache.framed_as)."""
        manifest = cache.read_manifest(self._s.avatar.avatars_dir / cache.check_id(avatar_id))
        if manifest is None:
            raise LookupError(f"avatar {avatar_id!r} is not prepared on this face server; run "
                              f"`avatarcast prepare --id {avatar_id} ...` here with the same "
                              "source")
        return str(manifest.get("source", {}).get("sha256", "")), cache.framed_as(manifest)

    def _load(self, key: Key) -> tuple[Avatar, FaceAnimator]:
        """Blocking, on the animators' thread: the avatar for an output, and its animator."""
        avatar_id, w, h, fps = key
        directory = self._s.avatar.avatars_dir / avatar_id
        avatar = for_output(load(directory), w, h, keep_rgb=self.animator_name == "musetalk")
        animator = make_animator(self.animator_name, self._s.face, fps)
        animator.load(avatar)
        return avatar, animator

    async def _acquire(self, key: Key, sha: str, framing: str | None) -> _Loaded:
        """The avatar for this output, its source (and framing, when the request names one)
        checked on every request, loaded when it is not (the least recently used one let go
        past face.server_max_avatars); the caller renders with it, then calls `_release`."""
        async with self._loading:  # held while loading, never while a client reads
            source, framed = await asyncio.to_thread(self._source, key[0])
            if source != sha:
                raise PermissionError(f"avatar {key[0]!r} here was prepared from a different "
                                      "source; prepare it from the same file on both sides")
            if framing is not None and framed != framing:
                # Its frames would not line up with the idle frames the daemon airs.
                raise PermissionError(
                    f"avatar {key[0]!r} here is framed {framed}, the daemon's {framing}; "
                    "prepare it with the same avatar.framing, avatar.face_share and output "
                    "aspect on both sides")
            here = f"{source} {framed}"
            entry = self._loaded.get(key)
            if entry is not None and entry.sha != here:  # prepared again since it was loaded
                await self._drop(key)
                entry = None
            if entry is None:
                avatar, animator = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._load, key)
                entry = self._loaded[key] = _Loaded(avatar, animator, here)
                while len(self._loaded) > self._s.face.server_max_avatars:
                    await self._drop(next(iter(self._loaded)))
            self._loaded.move_to_end(key)
            entry.users += 1
            return entry

    async def _drop(self, key: Key) -> None:
        entry = self._loaded.pop(key)
        entry.dropped = True
        log.info("let go of avatar %r at %dx%d %d fps", *key)
        if entry.users == 0:
            await self._close(entry)

    async def _release(self, entry: _Loaded) -> None:
        entry.users -= 1
        if entry.dropped and entry.users == 0:
            await self._close(entry)

    async def _close(self, entry: _Loaded) -> None:
        # Once the thread has done what it was given (a batch under way, a render's close):
        # then the animator takes no more work.
        await asyncio.get_running_loop().run_in_executor(self._executor, _nothing)
        await entry.animator.aclose()

    async def _render(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            w, h, fps = self._output(body)
            cycle, audio, mouth = parse_body(body)
            who = body["avatar"]
            avatar_id, sha = str(who["id"]), str(who.get("source_sha256", ""))
            framing = None if who.get("framing") is None else str(who["framing"])
            if abs(len(audio) - len(cycle) * 16_000 / fps) > 16_000 / fps:
                raise ValueError(f"audio_16k must hold {len(cycle)} frames of 16 kHz audio")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _error(400, f"bad request: {exc}")
        try:
            entry = await self._acquire((avatar_id, w, h, fps), sha, framing)
        except LookupError as exc:
            return _error(404, str(exc))
        except PermissionError as exc:
            return _error(409, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            return await self._stream(request, entry, cycle, audio, mouth)
        finally:
            await self._release(entry)

    async def _stream(self, request: web.Request, entry: _Loaded, cycle: list[int],
                      audio: Pcm, mouth: MouthTrack) -> web.StreamResponse:
        idle = entry.avatar.idle.frames
        if any(c >= len(idle) for c in cycle):
            return _error(400, f"cycle index beyond the avatar's {len(idle)} frames")

        def patches() -> Generator[bytes, None, None]:
            k = 0
            for batch in entry.animator.render(audio, cycle, mouth):
                out = b"".join(encode_patch(k + i, f, idle[cycle[k + i]])
                               for i, f in enumerate(batch))
                k += len(batch)
                yield out

        chunks = patches()
        loop = asyncio.get_running_loop()
        resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await resp.prepare(request)
        # A batch at a time on the animators' thread, the next one rendered while this one is
        # written from here: a client that does not read holds one batch, never the thread,
        # which renders the other requests' batches meanwhile.
        step = loop.run_in_executor(self._executor, _step, chunks)
        try:
            while (chunk := await step) is not None:
                step = loop.run_in_executor(self._executor, _step, chunks)
                await resp.write(chunk)
        except ConnectionError:
            log.info("a client left during its render")
            return resp
        finally:
            if not step.cancel() and not step.cancelled():  # its batch is not wanted
                step.exception()  # nor its failure: retrieved, not logged as lost
            self._executor.submit(chunks.close)  # on the thread that runs it, after that step
        await resp.write_eof()
        return resp


def _step(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


def _nothing() -> None:
    pass


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
