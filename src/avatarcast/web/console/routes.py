"""The console's HTTP routes, on the daemon's HTTP port.

    GET  /                 the page (page.html)
    GET  /snapshot.jpg     the latest preview frame
    GET  /preview.mjpg     the preview as MJPEG (multipart/x-mixed-replace), preview_fps a second
    GET  /api/status       what /healthz says, always 200
    POST /api/say          {"text", "interrupt"?, "voice"?} -> {"id"}: published to the speak
                           queue, like any publisher's
    POST /api/control/CMD  skip | clear | pause | resume, published to the control queue
    POST /api/scene        {"layer", "visible"?, "title"?, "subtitle"?, "text"?, "color"?,
                           "image"?, "video"?}: a `scene` control message (show or hide a layer, the
                           lower third's or the ticker's words, the background), published to
                           the control queue

With a token, every route wants it: a cookie set by opening /?token=..., or an
`Authorization: Bearer` header. In a worker, each channel's console is under /ch/ID/ (the
page's links are relative). POSTs take JSON only, which a cross-site form cannot send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ...broker.messages import SCENE_FIELDS, ControlMessage, SpeakMessage
from ...broker.publisher import PublishError, publish
from ...infra.redact import global_redactor
from ...settings import BrokerSettings
from ..parts import Handler, Route, add_part
from .access import Access, served
from .preview import PreviewTap

log = logging.getLogger(__name__)

__all__ = ["Console", "served"]


class Console:
    """Owned by the event loop (aiohttp's handlers)."""

    def __init__(self, *, broker: BrokerSettings, status: Callable[[], dict[str, Any]],
                 preview: PreviewTap, token: str | None) -> None:
        self._broker = broker
        self._status = status
        self._preview = preview
        self._access = Access(token)
        self._page = resources.files(__package__).joinpath("page.html").read_text()
        # Set when its daemon stops: open previews end (in a worker, whose HTTP port stays
        # up, they would otherwise show a frozen picture of a channel gone elsewhere).
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True

    ROUTES: Sequence[Route] = (
        ("GET", "/", "_index"),
        ("GET", "/snapshot.jpg", "_snapshot"),
        ("GET", "/preview.mjpg", "_mjpeg"),
        ("GET", "/api/status", "_api_status"),
        ("POST", "/api/say", "_say"),
        ("POST", "/api/control/{command}", "_control"),
        ("POST", "/api/scene", "_scene"),
    )

    def handler(self, name: str) -> Handler:
        """A route's handler, behind the token check."""
        method: Handler = getattr(self, name)
        return self._access.guard(method, acts=name in ("_say", "_control", "_scene"))

    def add_routes(self, app: web.Application) -> None:
        add_part(app, self)

    # -- the page and the picture --------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=self._page, content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    async def _frame(self, wait_s: float) -> tuple[int, bytes] | None:
        """The latest preview frame; the first request starts the tap, so wait for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while (got := await asyncio.to_thread(self._preview.jpeg)) is None:
            if loop.time() > deadline:
                return None
            await asyncio.sleep(0.05)
        return got

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        got = await self._frame(3.0)
        if got is None:
            raise web.HTTPServiceUnavailable(text="no frame on air yet")
        return web.Response(body=got[1], content_type="image/jpeg",
                            headers={"Cache-Control": "no-store"})

    async def _mjpeg(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={
            "Content-Type": "multipart/x-mixed-replace; boundary=frame",
            "Cache-Control": "no-store"})
        await resp.prepare(request)
        last = -1
        try:
            while not self._closed:
                got = await self._frame(3.0)
                if got is not None and got[0] != last:
                    last, jpg = got
                    await resp.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(jpg)).encode() + b"\r\n\r\n" + jpg + b"\r\n")
                await asyncio.sleep(self._preview.interval_s)
        except (ConnectionResetError, ConnectionError):
            pass  # the viewer left
        return resp

    # -- status and actions ----------------------------------------------------------------------

    async def _api_status(self, request: web.Request) -> web.StreamResponse:
        text = global_redactor()(json.dumps(self._status()))
        return web.Response(text=text, content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON (Content-Type: application/json)")
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object")
        return body

    async def _say(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        try:
            msg = SpeakMessage(id=str(uuid.uuid4()), text=body.get("text", ""),
                               interrupt=bool(body.get("interrupt", False)),
                               voice=body.get("voice") or None)
        except ValidationError as exc:
            raise web.HTTPBadRequest(text=_errors(exc)) from None
        await self._publish(msg)
        log.info("console published %s (%d chars%s)", msg.id, len(msg.text),
                 ", interrupt" if msg.interrupt else "", extra={"msg_id": msg.id})
        return web.json_response({"id": msg.id})

    async def _control(self, request: web.Request) -> web.StreamResponse:
        await self._body(request)
        try:
            msg = ControlMessage.model_validate({"command": request.match_info["command"]})
        except ValidationError:
            raise web.HTTPNotFound(text="commands: skip, clear, pause, resume") from None
        await self._publish(msg)
        log.info("console published control %s", msg.command)
        return web.json_response({"command": msg.command})

    async def _scene(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        fields = SCENE_FIELDS
        if unknown := sorted(set(body) - set(fields)):
            raise web.HTTPBadRequest(text=f"{', '.join(unknown)}: not a field of a scene "
                                     f"change ({', '.join(fields)})")
        try:
            msg = ControlMessage.model_validate({"command": "scene", **body})
        except ValidationError as exc:
            raise web.HTTPBadRequest(text=_errors(exc)) from None
        await self._publish(msg)
        log.info("console published control scene (layer %s)", msg.layer)
        return web.json_response({"command": "scene", "layer": msg.layer})

    async def _publish(self, msg: SpeakMessage | ControlMessage) -> None:
        try:
            await publish(self._broker, msg)
        except PublishError as exc:
            raise web.HTTPServiceUnavailable(
                text=global_redactor()(f"could not publish: {exc}")) from None


def _errors(exc: ValidationError) -> str:
    """A refused body's faults, one line (the field and why)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                     for e in exc.errors())
