"""WHEP (the WebRTC-HTTP Egress Protocol) on the daemon's HTTP port: a browser, or any WHEP
player, watches the program with sub-second delay.

    POST    /whep        an SDP offer (application/sdp) -> 201, the answer, Location: /whep/ID
                         (in a worker: /ch/CHANNEL/whep, /ch/CHANNEL/whep/ID)
    DELETE  /whep/ID     ends that viewer's session
    OPTIONS /whep[/ID]   CORS and Accept-Post: application/sdp

The answer carries every ICE candidate (gathering completes before it is sent: no trickle) and
no STUN or TURN server is used, so it is for the LAN or the machine itself. POST and DELETE
follow the console's access rule (console/access.py); the preflight cannot carry a token.

An offer is bounded before it costs anything: its size (webrtc.max_offer_bytes: 413), the time
it takes to arrive (OFFER_TIMEOUT_S: 408), its media sections (webrtc.max_media_sections: 400);
then the viewers (webrtc.max_viewers: 503), checked and counted at once.

A peer ends on DELETE, when its connection fails or closes (a browser that vanishes fails ICE
consent within about 30 s), when it has not connected within CONNECT_TIMEOUT_S, and at close.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import (
    InternalError,
    InvalidAccessError,
    InvalidStateError,
    OperationError,
)
from aiortc.sdp import SessionDescription
from prometheus_client import CollectorRegistry, Gauge

from ...settings import WebRTCSettings
from ..console.access import Access
from ..parts import UNGUARDED, Handler, add_part
from .feed import ProgramFeed
from .routes import WHEP_ROUTES
from .tracks import ProgramAudio, ProgramVideo

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0
ANSWER_TIMEOUT_S = 10.0
OFFER_TIMEOUT_S = 10.0  # to send the offer, once the request's head is in
SDP = "application/sdp"
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Location"}
# What aiortc raises for an offer it cannot take or answer.
UNANSWERABLE = (ValueError, InternalError, InvalidAccessError, InvalidStateError,
                OperationError)


@dataclass(eq=False)
class Viewer:
    id: str
    pc: RTCPeerConnection
    audio: ProgramAudio | None = None
    video: ProgramVideo | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class Whep:
    """Owned by the event loop (aiohttp's handlers and aiortc's callbacks)."""

    def __init__(self, *, settings: WebRTCSettings, stream_fps: int, sample_rate: int,
                 token: str | None, loop: asyncio.AbstractEventLoop) -> None:
        self._feed = ProgramFeed(loop=loop, stream_fps=stream_fps, fps=settings.fps,
                                 width=settings.width)
        self.every = self._feed.every
        self.tap = self._feed.offer  # for the pacer's taps
        self._fps = stream_fps
        self._rate = sample_rate
        self._max = settings.max_viewers
        self._max_offer = settings.max_offer_bytes
        self._max_sections = settings.max_media_sections
        self._access = Access(token)
        self._viewers: dict[str, Viewer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    ROUTES = WHEP_ROUTES

    def handler(self, name: str) -> Handler:
        """A route's handler; all but the preflight (which cannot carry a token) guarded."""
        method: Handler = getattr(self, name)
        if name in UNGUARDED:
            return method
        refusal = ("the WebRTC view needs the console's token: send Authorization: Bearer "
                   "TOKEN, or open /?token=... once")
        return self._access.guard(method, refusal)

    def add_routes(self, app: web.Application) -> None:
        add_part(app, self)

    # -- HTTP ------------------------------------------------------------------------------

    async def _options(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204, headers={
            **CORS, "Accept-Post": SDP,
            "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Authorization",
        })

    async def _post(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != SDP:
            raise web.HTTPUnsupportedMediaType(text=f"send the SDP offer as {SDP}",
                                               headers=CORS)
        offer = await self._read_offer(request)
        sections = sum(line.startswith("m=") for line in offer.splitlines())
        if sections > self._max_sections:
            raise web.HTTPBadRequest(
                text=f"the offer has {sections} media sections, more than "
                     f"{self._max_sections} (webrtc.max_media_sections)", headers=CORS)
        # The cap is checked and the place taken with nothing awaited in between: offers that
        # arrive together cannot all pass it.
        if self._closed or len(self._viewers) >= self._max:
            log.warning("WebRTC viewer refused: %d watching, the most allowed "
                        "(webrtc.max_viewers)", len(self._viewers))
            raise web.HTTPServiceUnavailable(
                text=f"{len(self._viewers)} viewers already (webrtc.max_viewers); try later",
                headers={**CORS, "Retry-After": "10"})
        viewer = Viewer(uuid.uuid4().hex, RTCPeerConnection(RTCConfiguration(iceServers=[])))
        self._viewers[viewer.id] = viewer  # holds the place while the answer is made
        try:
            answer = await self._answer(viewer, offer)
        except (*UNANSWERABLE, TimeoutError) as exc:
            await self._end(viewer.id, "no answer")
            log.warning("WebRTC offer refused: %s", exc)
            raise web.HTTPBadRequest(text=f"cannot answer this offer: {exc}",
                                     headers=CORS) from None
        except BaseException:
            await self._end(viewer.id, "error")
            raise
        viewer.timer = asyncio.get_running_loop().call_later(
            CONNECT_TIMEOUT_S, self._spawn_end, viewer.id, "did not connect")
        log.info("WebRTC viewer %s joined (%d of %d)", viewer.id[:8], len(self._viewers),
                 self._max)
        return web.Response(status=201, text=answer, content_type=SDP,
                            headers={**CORS, "Location": f"{request.path.rstrip('/')}/{viewer.id}"})

    async def _read_offer(self, request: web.Request) -> str:
        """The offer, at most webrtc.max_offer_bytes of UTF-8, read within OFFER_TIMEOUT_S."""
        most = self._max_offer
        too_large = web.HTTPRequestEntityTooLarge(
            max_size=most, actual_size=request.content_length or most + 1, headers=CORS,
            text=f"the offer is larger than {most} bytes (webrtc.max_offer_bytes)")
        if (request.content_length or 0) > most:
            raise too_large
        body = bytearray()
        try:
            async with asyncio.timeout(OFFER_TIMEOUT_S):
                while len(body) <= most and (chunk := await request.content.readany()):
                    body += chunk
        except TimeoutError:
            raise web.HTTPRequestTimeout(text=f"the offer did not arrive within "
                                              f"{OFFER_TIMEOUT_S:g} s", headers=CORS) from None
        if len(body) > most:
            raise too_large
        try:
            return body.decode()
        except UnicodeDecodeError:
            raise web.HTTPBadRequest(text="cannot answer this offer: it is not UTF-8",
                                     headers=CORS) from None

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        vid = request.match_info["id"]
        if vid not in self._viewers:
            raise web.HTTPNotFound(text="no such WebRTC session", headers=CORS)
        await self._end(vid, "deleted")
        return web.Response(status=200, headers=CORS)

    # -- peers -----------------------------------------------------------------------------

    async def _answer(self, viewer: Viewer, offer: str) -> str:
        pc = viewer.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        wanted = {m.kind for m in SessionDescription.parse(offer).media
                  if m.direction in (None, "recvonly", "sendrecv")}
        if not wanted & {"audio", "video"}:
            raise ValueError("it receives no audio or video")
        if "audio" in wanted:
            viewer.audio = ProgramAudio(self._rate)
            pc.addTrack(viewer.audio)
        if "video" in wanted:
            viewer.video = ProgramVideo(self._fps)
            pc.addTrack(viewer.video)

        @pc.on("connectionstatechange")
        def changed() -> None:
            state = pc.connectionState
            if state == "connected" and viewer.timer is not None:
                viewer.timer.cancel()
                log.info("WebRTC viewer %s connected", viewer.id[:8])
            elif state in ("failed", "closed"):
                self._spawn_end(viewer.id, f"connection {state}")

        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            # aiortc gathers every ICE candidate here: the answer is complete (no trickle).
            await pc.setLocalDescription(await pc.createAnswer())
        self._feed.add(audio=viewer.audio, video=viewer.video)
        return str(pc.localDescription.sdp)

    def _spawn_end(self, vid: str, why: str) -> None:
        if vid not in self._viewers:
            return
        task = asyncio.get_running_loop().create_task(self._end(vid, why),
                                                      name=f"webrtc-end-{vid[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("closing a WebRTC viewer failed", exc_info=exc)

    async def _end(self, vid: str, why: str) -> None:
        viewer = self._viewers.pop(vid, None)
        if viewer is None:
            return
        if viewer.timer is not None:
            viewer.timer.cancel()
        self._feed.remove(*(t for t in (viewer.audio, viewer.video) if t is not None))
        await viewer.pc.close()
        log.info("WebRTC viewer %s left (%s); %d watching", vid[:8], why, len(self._viewers))

    async def aclose(self) -> None:
        """Ends every peer; idempotent."""
        self._closed = True
        await asyncio.gather(*(self._end(vid, "shutdown") for vid in list(self._viewers)))
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        await self._feed.aclose()

    def register(self, registry: CollectorRegistry) -> None:
        """avatarcast_webrtc_viewers on /metrics."""
        Gauge("avatarcast_webrtc_viewers", "Browsers watching the WebRTC view (WHEP).",
              registry=registry).set_function(lambda: float(self.viewers))

