"""The web console in a real headless Chromium against the running daemon: the page loads, the
preview shows the avatar, a text typed into the box is spoken on the received stream, skip
works; and its access rules (token, JSON only, clear errors) over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from avatarcast.avatar.track import FaceTracker
from avatarcast.settings import BrokerSettings
from avatarcast.web.console.preview import PreviewTap
from avatarcast.web.console.routes import Console, served
from avatarcast.web.port import HttpPort
from harness.daemon import DaemonProc, QueueNames, Receiver
from harness.events import EventTap
from harness.services import NginxRtmp, free_port
from harness.speak import decode_audio

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LONG = ("This is a long text typed into the console, long enough that there is time to skip "
        "it while it is on the air. It has a second sentence, and then a third one as well.")


def _say(page: Any, text: str) -> str:
    """Type `text`, press Say; the message id the console answers with."""
    page.evaluate("document.getElementById('notice').textContent = ''")
    page.fill("#text", text)
    page.click("#say")
    page.wait_for_function("document.getElementById('notice').textContent.startsWith('queued')")
    return str(page.text_content("#notice")).split()[-1]


@pytest.mark.services
def test_the_console_in_a_real_browser(tmp_path: Path, queues: QueueNames,
                                       rtmp_server: NginxRtmp) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "Debian's chromium is missing: scripts/install-deps.sh dev"
    url = rtmp_server.url("console")
    receiver = Receiver(url, tmp_path / "received.flv", idle_timeout_s=60)
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url]),
        "AVATARCAST_VIDEO__WIDTH": "640", "AVATARCAST_VIDEO__HEIGHT": "360",
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")
        base = f"http://127.0.0.1:{daemon.health_port}"
        with EventTap(queues.events) as tap, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(base + "/")
            assert page.title() == "avatarcast console"
            page.wait_for_function("document.getElementById('state').textContent === 'idle'")
            page.wait_for_function("document.getElementById('preview').naturalWidth > 0",
                                   timeout=15_000)
            # The preview is the picture on air: the avatar's face is in it.
            with urllib.request.urlopen(base + "/snapshot.jpg", timeout=10) as r:
                jpg = np.frombuffer(r.read(), np.uint8)
            rgb = cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            assert rgb.shape[:2] == (360, 640)
            assert FaceTracker().find(rgb) is not None

            said = _say(page, "Hello from the console, everybody.")
            events = tap.wait_for(lambda ev: any(e["id"] == said and e["event"] == "finished"
                                                 for e in ev), 60, "the console's text aired")
            aired = {e["event"]: e for e in events if e["id"] == said}
            page.wait_for_function(f"document.getElementById('recent').textContent"
                                   f".includes('{said}')")
            shot = tmp_path / "console.png"
            page.screenshot(path=str(shot))
            if target := os.environ.get("AVATARCAST_CONSOLE_SCREENSHOT"):
                shutil.copy(shot, target)

            long_id = _say(page, LONG)
            tap.wait_for(lambda ev: any(e["id"] == long_id and e["event"] == "on_air"
                                        for e in ev), 60, "the long text on air")
            page.click("[data-control=skip]")
            tap.wait_for(lambda ev: any(e["id"] == long_id and e["event"] == "skipped"
                                        for e in ev), 20, "skipped")
            browser.close()
        assert daemon.stop() == 0
    finally:
        daemon.kill()
        receiver.finish()
    # The typed text was spoken on the stream a real client received.
    audio = decode_audio(receiver.out).astype(np.float32) / 32768

    def rms(t0: float, t1: float) -> float:
        part = audio[int(t0 * 16000) : int(t1 * 16000)]
        return float(np.sqrt(np.mean(part**2))) if len(part) else 0.0

    speaking = rms(aired["on_air"]["stream_s"], aired["finished"]["stream_s"])
    before = rms(max(0.0, aired["on_air"]["stream_s"] - 1.0), aired["on_air"]["stream_s"])
    assert speaking > 0.02 and speaking > 5 * before, (speaking, before)


def _call(port: int, path: str, data: bytes | None = None, headers: dict[str, str] | None = None,
          method: str | None = None) -> tuple[int, str, dict[str, str]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers=headers or {}, method=method)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=5) as r:
            return r.status, r.read().decode(errors="replace"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)


def test_the_console_wants_its_token_and_json() -> None:
    port = free_port()
    preview = PreviewTap(2, 30, 240)
    console = Console(broker=BrokerSettings(url="amqp://guest:guest@127.0.0.1:1/"),
                      status=lambda: {"state": "idle"}, preview=preview, token="s3cret-token")

    async def run() -> list[tuple[int, str, dict[str, str]]]:
        server = HttpPort("127.0.0.1", port, lambda: {}, None, console.add_routes)
        await server.start()
        try:
            bearer = {"Authorization": "Bearer s3cret-token"}
            calls = [
                ("/", None, {}, None), ("/?token=wrong", None, {}, None),
                ("/?token=s3cret-token", None, {}, None), ("/api/status", None, bearer, None),
                ("/api/say", b"text=hi", {**bearer, "Content-Type":
                                          "application/x-www-form-urlencoded"}, "POST"),
                ("/api/say", b'{"text": ""}', {**bearer, "Content-Type": "application/json"},
                 "POST"),
                ("/api/control/explode", b"{}", {**bearer, "Content-Type": "application/json"},
                 "POST"),
                ("/api/say", b'{"text": "hello"}', {**bearer, "Content-Type":
                                                    "application/json"}, "POST"),
                ("/api/status", None, {"Cookie": "avatarcast_token=s3cret-token"}, None),
            ]
            return [await asyncio.to_thread(_call, port, *c) for c in calls]
        finally:
            await server.aclose()

    (bare, wrong, right, status, form, empty, unknown, no_broker, cookie) = asyncio.run(run())
    assert bare[0] == 401 and "token" in bare[1]
    assert wrong[0] == 401
    assert right[0] == 303 and "avatarcast_token=s3cret-token" in right[2]["Set-Cookie"]
    assert "HttpOnly" in right[2]["Set-Cookie"]
    assert status[0] == 200 and json.loads(status[1]) == {"state": "idle"}
    assert form[0] == 415 and "JSON" in form[1]
    assert empty[0] == 400 and "text" in empty[1]
    assert unknown[0] == 404 and "skip, clear, pause, resume" in unknown[1]
    assert no_broker[0] == 503 and "could not publish" in no_broker[1]
    assert cookie[0] == 200
    assert served("127.0.0.1", None) and not served("0.0.0.0", None)
    assert served("0.0.0.0", "t")
