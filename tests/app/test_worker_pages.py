"""A worker's HTTP port in a real headless Chromium: / lists its channels, /ch/ID/ is that
channel's console (its preview, its status, its queue) and /ch/ID/whep its WebRTC view, and a
channel the worker does not run answers with a line that says so."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pydantic import SecretStr

from avatarcast.app.worker_pages import ChannelPages
from avatarcast.settings import BrokerSettings, HealthSettings
from avatarcast.web.console.preview import PreviewTap
from avatarcast.web.console.routes import Console
from avatarcast.web.port import HttpPort
from harness.daemon import (
    DaemonProc,
    QueueNames,
    Receiver,
    decode_audio,
    delete_queues,
    rms_windows,
    write_channels,
)
from harness.services import NginxRtmp, free_port
from tests.web.test_console import _call, _say
from tests.web.test_webrtc import _call as _whep_call
from tests.web.test_webrtc import _offer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.services
def test_each_channel_has_its_console_under_the_workers_port(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "Debian's chromium is missing: scripts/install-deps.sh dev"
    urls = {cid: rtmp_server.url(f"pages-{cid}") for cid in "abc"}
    write_channels(tmp_path / "channels.toml", urls)
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_CHANNELS_FILE": str(tmp_path / "channels.toml"),
        "AVATARCAST_OUTPUT__RTMP_URLS": "[]",
        "AVATARCAST_FACE__ANIMATOR": "still",
        "AVATARCAST_FLEET__CAPACITY": "2",  # one channel waits for a worker with room
    })
    port = daemon.health_port
    base = f"http://127.0.0.1:{port}"

    def ready(s: dict[str, Any]) -> bool:
        return len(s["owned"]) == 2 and all(s["channels"][c].get("speech_ready")
                                            for c in s["owned"])

    receiver: Receiver | None = None
    try:
        st = daemon.wait_for(ready, 90, "two channels on air")
        one, two = st["owned"]
        (other,) = set("abc") - {one, two}
        receiver = Receiver(urls[two], tmp_path / "received.flv", idle_timeout_s=60)
        code, page, _ = _call(port, "/")
        assert code == 200 and f'href="ch/{one}/"' in page and f'href="ch/{two}/"' in page
        assert f'href="ch/{other}/"' not in page and "elsewhere" in page
        code, _, headers = _call(port, f"/ch/{two}")
        assert code == 301 and headers["Location"] == f"/ch/{two}/"
        code, text, _ = _call(port, f"/ch/{other}/api/status")
        assert code == 503 and f"channel {other} is not run by this worker" in text
        assert _call(port, "/ch/zz/")[0] == 404
        code, text, _ = _call(port, f"/ch/{one}/api/status")
        assert code == 200 and json.loads(text)["channel"] == one
        with urllib.request.urlopen(f"{base}/ch/{two}/snapshot.jpg", timeout=10) as r:
            jpg = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert jpg is not None and jpg.shape[:2] == (240, 320)

        # Its WebRTC view, at /ch/ID/whep: a session there, and its end.
        async def watch() -> tuple[tuple[int, str, dict[str, str]], int]:
            pc, offer = await _offer()
            try:
                sdp = {"Content-Type": "application/sdp"}
                made = await asyncio.to_thread(_whep_call, port, "POST", f"/ch/{one}/whep",
                                               offer, sdp)
                ended = await asyncio.to_thread(_whep_call, port, "DELETE",
                                                made[2].get("Location", "/"), None, sdp)
                return made, ended[0]
            finally:
                await pc.close()

        (code, answer, headers), ended = asyncio.run(watch())
        assert code == 201 and "a=candidate:" in answer
        assert headers["Location"].startswith(f"/ch/{one}/whep/") and ended == 200

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(f"{base}/ch/{two}/")
            page.wait_for_function(f"document.title === 'avatarcast console: {two}'")
            page.wait_for_function("document.getElementById('state').textContent === 'idle'")
            page.wait_for_function("document.getElementById('preview').naturalWidth > 0",
                                   timeout=15_000)
            said = _say(page, "Spoken on this channel, from its own console.")
            page.wait_for_function(f"document.getElementById('recent').textContent"
                                   f".includes('{said}')", timeout=60_000)
            page.screenshot(path=str(tmp_path / "channel.png"))
            browser.close()
        st = daemon.wait_for(lambda s: any(r["id"] == said and r["outcome"] == "aired"
                                           for r in s["channels"][two]["recent"]),
                             30, "the console's text aired on its channel")
        assert not st["channels"][one]["recent"]  # only that channel's queue had it
        assert daemon.stop() == 0, daemon.log()[-3000:]
    finally:
        daemon.kill()
        if receiver is not None:
            receiver.finish()
        for cid in "abc":
            delete_queues(queues.channel(cid))
    assert f"web console at /ch/{one}/ on the HTTP port" in daemon.log()
    # The text typed into that channel's console was spoken on that channel's stream.
    assert receiver is not None
    assert rms_windows(decode_audio(receiver.out), 48000, 0.1).max() > 0.02


@dataclass
class _Channel:
    """What the pages need of a running channel's daemon."""

    parts: dict[str, Any]
    running: bool = True


def test_the_workers_pages_want_the_token_and_keep_secrets() -> None:
    port = free_port()
    token = "s3cret-token"
    health = HealthSettings(token=SecretStr(token))
    console = Console(broker=BrokerSettings(url="amqp://guest:guest@127.0.0.1:1/"),
                      status=lambda: {"channel": "a", "state": "idle"},
                      preview=PreviewTap(2, 30, 240), token=token)
    running = {"a": _Channel({"console": console})}
    key_url = "rtmp://live.example/app/KEY-1234567890"

    def status() -> dict[str, Any]:
        return {"worker": "w1", "owned": ["a"], "capacity": 1, "channels": {
            "a": {"state": "idle", "last_error": f"ffmpeg: {key_url}: I/O error"},
            "b": {"state": "elsewhere", "last_error": None}}}

    pages = ChannelPages(health, ["a", "b"], running.get, status)  # type: ignore[arg-type]

    async def run() -> list[tuple[int, str, dict[str, str]]]:
        server = HttpPort("127.0.0.1", port, lambda: {}, None, pages.add_routes)
        await server.start()
        bearer = {"Authorization": f"Bearer {token}"}
        try:
            calls = [("/", None, {}, None), ("/", None, bearer, None),
                     ("/ch/a/api/status", None, {}, None),
                     ("/ch/a?token=s3cret%2Btoken", None, {}, None),
                     ("/ch/a/?token=" + token, None, {}, None),
                     ("/ch/a/api/status", None, bearer, "HEAD"),
                     ("/ch/b/api/status", None, bearer, None)]
            got = [await asyncio.to_thread(_call, port, *c) for c in calls]
            given = got[4][2]["Set-Cookie"].split(";")[0]  # what the browser sends back
            got.insert(5, await asyncio.to_thread(_call, port, "/ch/a/api/status", None,
                                                  {"Cookie": given}))
            return got
        finally:
            await server.aclose()

    bare, index, no_token, moved, opened, cookie, head, elsewhere = asyncio.run(run())
    assert bare[0] == 401 and no_token[0] == 401
    assert index[0] == 200 and 'href="ch/a/"' in index[1] and "KEY-1234567890" not in index[1]
    assert moved[0] == 301 and moved[2]["Location"] == "/ch/a/?token=s3cret%2Btoken"
    assert opened[0] == 303 and opened[2]["Location"] == "/ch/a/"
    assert "avatarcast_token=" in opened[2]["Set-Cookie"] and token not in opened[2]["Set-Cookie"]
    assert cookie[0] == 200 and json.loads(cookie[1])["channel"] == "a"
    assert head[0] == 200
    assert elsewhere[0] == 503 and "not run by this worker" in elsewhere[1]
    asyncio.run(console.aclose())


def test_a_channel_that_stops_ends_its_open_preview_and_answers_503_after() -> None:
    """A viewer watching /ch/a/preview.mjpg while channel a stops (its daemon closes its page
    parts, then leaves the worker's table): the stream ends instead of hanging on a console
    that will never send again, and the next request says the channel is not on air."""
    import http.client
    import threading

    port = free_port()
    preview = PreviewTap(10, 30, 240)
    console = Console(broker=BrokerSettings(url="amqp://guest:guest@127.0.0.1:1/"),
                      status=lambda: {"channel": "a"}, preview=preview, token=None)
    running = {"a": _Channel({"console": console})}
    pages = ChannelPages(HealthSettings(), ["a"], running.get,  # type: ignore[arg-type]
                         lambda: {"worker": "w1", "owned": ["a"], "capacity": 1,
                                  "channels": {"a": {"state": "idle", "last_error": None}}})
    frame = np.full((240 * 3 // 2, 320), 128, np.uint8)
    pacing = threading.Event()

    def pacer() -> None:  # the channel's pacer tap, 30 frames a second
        n = 0
        while not pacing.wait(1 / 30):
            preview.offer(n, frame, np.zeros(1600, np.int16))
            n += 1

    seen: dict[str, Any] = {"frames": 0, "ended": False}
    first = threading.Event()

    def watch() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        conn.request("GET", "/ch/a/preview.mjpg")
        resp = conn.getresponse()
        seen["status"] = resp.status
        while chunk := resp.read1(65536):
            seen["frames"] += chunk.count(b"--frame")
            if seen["frames"]:
                first.set()
        seen["ended"] = True
        conn.close()

    async def run() -> tuple[int, str, dict[str, str]]:
        server = HttpPort("127.0.0.1", port, lambda: {}, None, pages.add_routes)
        await server.start()
        tap = threading.Thread(target=pacer, daemon=True)
        viewer = threading.Thread(target=watch, daemon=True)
        tap.start()
        viewer.start()
        try:
            assert await asyncio.to_thread(first.wait, 15), "no preview frame came"
            await console.aclose()  # the channel's daemon closes its parts...
            running.pop("a")  # ...and leaves the worker's table
            await asyncio.to_thread(viewer.join, 15)
            assert seen["ended"], "the preview stayed open after its channel stopped"
            return await asyncio.to_thread(_call, port, "/ch/a/preview.mjpg")
        finally:
            pacing.set()
            await server.aclose()

    after = asyncio.run(run())
    assert seen["status"] == 200
    assert after[0] == 503 and "not on air" in after[1]  # still this worker's: restarting
