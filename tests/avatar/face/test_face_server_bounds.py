"""Trust at the edges of the remote animator (issue 26, item 10), both ways, over real HTTP.

The face server (`avatarcast serve-face`, a real process rendering with lite) bounds what one
request may cost: the output's size and rate, the avatars it keeps loaded, the source check on
every request, and a client that does not read holds nobody else up. The broadcaster's side
(the remote animator, behind the real FaceService) trusts no face server: a frame header that
does not fit the frame it asked for, an error body without end, an answer that does not
decode, or bytes that trickle in, each end in the lite animator rendering the rest, never in a
failed utterance (which the daemon would dead-letter) nor in gigabytes buffered."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aiohttp import web

from avatarcast.avatar import cache
from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.face.mouthtrack import MouthTrack
from avatarcast.avatar.face.remote import RemoteAnimator
from avatarcast.avatar.face.remote_wire import CONTENT_TYPE, HEADER, request_body
from avatarcast.avatar.face.service import FaceService
from avatarcast.avatar.prepare import build, load
from avatarcast.avatar.runtime import Avatar, for_output
from harness.services import free_port, stop_process, wait_port
from harness.threadserver import ThreadedApp

from ...faces import PORTRAIT

W, H, FPS = 640, 360, 30
MAX_AVATARS = 2


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The portrait prepared as `astro`: (the avatars dir, its source's sha256)."""
    avatars = tmp_path_factory.mktemp("avatars")
    directory = build(PORTRAIT, "astro", avatars, BuildSettings(FPS, 600, 1920))
    manifest = cache.read_manifest(directory)
    assert manifest is not None
    return avatars, str(manifest["source"]["sha256"])


@pytest.fixture(scope="module")
def face_server(prepared: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[str]:
    """`avatarcast serve-face` (lite) keeping at most MAX_AVATARS loaded; its base URL."""
    avatars, _ = prepared
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    env.update({"AVATARCAST_AVATAR__AVATARS_DIR": str(avatars),
                "AVATARCAST_FACE__ANIMATOR": "lite",
                "AVATARCAST_FACE__SERVER_MAX_AVATARS": str(MAX_AVATARS)})
    logs = tmp_path_factory.mktemp("serve-face")
    with (logs / "serve-face.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "avatarcast", "serve-face", "--port",
                                 str(port)], env=env, cwd=logs, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_port(port, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def _mouth(n: int) -> MouthTrack:
    jaw = (0.5 + 0.5 * np.sin(np.arange(n) / 3)).astype(np.float32)
    zero = np.zeros(n, np.float32)
    return MouthTrack(jaw, zero, zero, zero, np.zeros(n, np.int8))


def _body(sha: str, n: int, w: int = W, h: int = H, fps: int = FPS) -> dict[str, Any]:
    audio = np.zeros(round(n * 16_000 / fps), np.int16)
    return request_body("astro", sha, w, h, fps, [0] * n, audio, _mouth(n))


def _frames(data: bytes, n: int) -> list[int]:
    """The frame indices of a streamed answer, which must hold exactly its frames."""
    at, seen = 0, []
    for _ in range(n):
        index, _x, _y, w, h = HEADER.unpack_from(data, at)
        seen.append(index)
        at += HEADER.size + w * h * 3 // 2
    assert at == len(data), (at, len(data))
    return seen


def _loaded(url: str) -> int:
    return int(httpx.get(f"{url}/healthz", timeout=10).json()["avatars_loaded"])


# -- the face server ----------------------------------------------------------------------------

def test_the_face_server_refuses_outputs_beyond_its_bounds(
    face_server: str, prepared: tuple[Path, str],
) -> None:
    _, sha = prepared
    url = f"{face_server}/v1/render"
    for w, h, fps, says in [(4002, 2250, FPS, "face.server_max_width"),
                            (20_000, 20_000, FPS, "face.server_max_width"),
                            (W, 2400, FPS, "face.server_max_height"),
                            (641, H, FPS, "even"), (W, H, 1000, "fps"), (W, H, 0, "fps")]:
        r = httpx.post(url, json=_body(sha, 4, w, h, max(fps, 1)) | {"fps": fps}, timeout=30)
        assert r.status_code == 400 and says in r.json()["error"]["message"], (
            w, h, fps, r.text[:300])
    wrong_type = _body(sha, 4) | {"width": "640"}
    r = httpx.post(url, json=wrong_type, timeout=30)
    assert r.status_code == 400 and "integers" in r.text, r.text


def test_the_source_is_checked_on_every_request_and_loaded_avatars_are_bounded(
    face_server: str, prepared: tuple[Path, str],
) -> None:
    _, sha = prepared
    url = f"{face_server}/v1/render"
    first = httpx.post(url, json=_body(sha, 6), timeout=30)
    assert first.status_code == 200 and _frames(first.content, 6) == list(range(6))
    # The same avatar and output, now loaded: another source under the id is still refused.
    other = httpx.post(url, json=_body("f" * 64, 6), timeout=30)
    assert other.status_code == 409 and "different source" in other.text, other.text[:300]
    # The same source framed otherwise (another aspect, share or framing on the daemon's
    # side) would not line up with the daemon's idle frames: refused too; framed alike, drawn.
    manifest = cache.read_manifest(prepared[0] / "astro")
    assert manifest is not None and cache.framed_as(manifest).startswith("face ")
    for framing, status in (("source", 409), ("face 0,0,512,288", 409),
                            (cache.framed_as(manifest), 200)):
        body = _body(sha, 4)
        body["avatar"]["framing"] = framing
        r = httpx.post(url, json=body, timeout=30)
        assert r.status_code == status, (framing, r.text[:300])
        assert status == 200 or "framed" in r.json()["error"]["message"]
    # Three outputs, two kept: the least recently used goes, and comes back when asked for.
    for w, h in [(320, 180), (480, 270), (W, H)]:
        r = httpx.post(url, json=_body(sha, 4, w, h), timeout=30)
        assert r.status_code == 200 and _frames(r.content, 4) == [0, 1, 2, 3]
        assert _loaded(face_server) <= MAX_AVATARS
    assert _loaded(face_server) == MAX_AVATARS


def test_a_client_that_does_not_read_holds_up_no_other(
    face_server: str, prepared: tuple[Path, str],
) -> None:
    """A asks for a long render and reads nothing: its answer (about 20 MB of patches) is far
    beyond what the sockets buffer (a few MB), so a server that rendered one request at a time
    to the end would keep B waiting for as long as A does not read: for ever (B's read timeout
    then ends the test)."""
    _, sha = prepared
    long = 3000
    payload = json.dumps(_body(sha, long)).encode()
    port = int(face_server.rsplit(":", 1)[1])
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", port))
    try:
        slow.sendall(b"POST /v1/render HTTP/1.1\r\nHost: face\r\nContent-Type: application/json"
                     b"\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        # The server is answering A (its first bytes are there, unread) ...
        slow.settimeout(30)
        assert slow.recv(1, socket.MSG_PEEK) == b"H"
        # ... and B is answered in full meanwhile, at two other outputs: the avatar A renders
        # with is let go of (two are kept), but not taken from A while it renders.
        for w, h in [(320, 180), (480, 270)]:
            other = httpx.post(f"{face_server}/v1/render", json=_body(sha, 40, w, h),
                               timeout=30)
            assert other.status_code == 200 and _frames(other.content, 40) == list(range(40))
        assert _loaded(face_server) == MAX_AVATARS
        # A, read at last, gets every frame.
        with slow.makefile("rb") as answer:
            status = answer.readline()
            assert b" 200 " in status, status
            while answer.readline() not in (b"\r\n", b""):
                pass
            data = _dechunk(answer)
        assert _frames(data, long) == list(range(long))
    finally:
        slow.close()


def _dechunk(stream: Any) -> bytes:
    out = bytearray()
    while line := stream.readline():
        if not (size := int(line.split(b";")[0], 16)):
            return bytes(out)
        out += stream.read(size)
        stream.readline()
    raise AssertionError(f"the answer broke off after {len(out)} bytes")


# -- the broadcaster's side: hostile face servers -----------------------------------------------

@pytest.fixture(scope="module")
def avatar(prepared: tuple[Path, str]) -> Avatar:
    avatars, _ = prepared
    return for_output(load(avatars / "astro"), W, H, keep_rgb=False)


class Hostile(ThreadedApp):
    """A face server that answers in the wire format, and lies. `sent` counts the bytes it
    got through to the broadcaster (each write waits until the socket took it)."""

    OFFER = 128 * 2**20  # what it tries to make the broadcaster take

    def __init__(self, how: str) -> None:
        self.port = free_port()
        self.how = how
        self.sent = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/render", self.render)

    async def render(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.how == "error body":  # an error whose body never ends
            resp = web.StreamResponse(status=500, headers={"Content-Type": "application/json"})
        elif self.how == "bad encoding":  # says gzip, is not
            resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE,
                                               "Content-Encoding": "gzip"})
        else:
            resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await resp.prepare(request)
        try:
            if self.how == "trickle":  # a frame that fits, a byte at a time, never whole
                await resp.write(HEADER.pack(0, 100, 100, 16, 16))
                while True:
                    await resp.write(b"\x80")
                    self.sent += 1
                    await asyncio.sleep(0.2)  # well inside the read timeout (1 s)
            if self.how == "header":  # a frame the size of a wall
                await resp.write(HEADER.pack(0, 0, 0, 65534, 65534))
            chunk = b"\x1f\x8b" + bytes(2**20 - 2)
            while self.sent < self.OFFER:
                await resp.write(chunk)
                self.sent += len(chunk)
        except ConnectionError:
            pass
        return resp


@pytest.mark.parametrize("how", ["header", "error body", "bad encoding", "trickle"])
def test_a_hostile_face_server_leaves_it_to_lite(
    how: str, avatar: Avatar, caplog: pytest.LogCaptureFixture,
) -> None:
    n = 30
    audio = np.zeros(n * 16_000 // FPS, np.int16)

    async def run(url: str) -> tuple[list[int], RemoteAnimator]:
        animator = RemoteAnimator(url, FPS, timeout_s=1.0)
        # The service fails an utterance (the daemon dead-letters it) when its animator is
        # silent for 8 s: the trickle (a byte every 0.2 s) would go on far longer than that.
        service = FaceService(animator, timeout_s=8.0)
        await service.start(avatar)
        try:
            got = [len(batch) async for batch in service.render(audio, [0] * n, _mouth(n))]
        finally:
            await service.aclose()
        return got, animator

    caplog.set_level(logging.WARNING, "avatarcast.avatar.face.remote")
    with Hostile(how) as server:
        got, animator = asyncio.run(run(f"http://127.0.0.1:{server.port}"))
        time.sleep(0.2)  # the server sees the broadcaster hang up
    assert sum(got) == n and animator.frames_local == n and animator.frames_remote == 0
    assert "the lite animator renders frames 0..29" in caplog.text
    # What the server pushed stopped at what the sockets hold, far from what it offered.
    assert server.sent < Hostile.OFFER // 4, server.sent
    says = {"header": "does not fit a 640x360 frame", "error body": "HTTP 500",
            "bad encoding": "Content-Encoding gzip",
            "trickle": "frame 0 did not arrive whole within 1 s"}
    assert says[how] in caplog.text, caplog.text
