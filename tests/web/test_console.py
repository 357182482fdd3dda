"""The web console in a real headless Chromium against the running daemon: the page loads, the
preview shows the avatar, a text typed into the box is spoken on the received stream, skip
works; and its access rules (token, JSON only, clear errors) over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp.test_utils import make_mocked_request

from avatarcast.avatar.track import FaceTracker
from avatarcast.settings import BrokerSettings
from avatarcast.web.console.access import COOKIE, COOKIE_MAX_AGE_S, MISSES_ALLOWED, Access
from avatarcast.web.console.preview import PreviewTap
from avatarcast.web.console.routes import Console, served
from avatarcast.web.port import HttpPort
from harness.daemon import AMQP, DaemonProc, QueueNames, Receiver, drain
from harness.events import EventTap
from harness.services import NginxRtmp, free_port
from harness.speak import decode_audio

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LONG = ("This is a long text typed into the console, long enough that there is time to skip "
        "it while it is on the air. It has a second sentence, and then a third one as well.")


def _snapshot(base: str) -> np.ndarray:
    """The console's latest preview frame, RGB."""
    with urllib.request.urlopen(base + "/snapshot.jpg", timeout=10) as r:
        jpg = np.frombuffer(r.read(), np.uint8)
    return np.asarray(cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


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
            rgb = _snapshot(base)
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

            # The scene from the console: the AI label hidden and the ticker set live, each
            # on air (the preview is the programme) once the daemon says it changed.
            page.wait_for_function("document.getElementById('layer-ai_label') !== null "
                                   "&& document.getElementById('layer-ai_label').checked")
            labelled = _snapshot(base)
            page.uncheck("#layer-ai_label")
            daemon.wait_for(lambda s: not s["scene"]["layers"]["ai_label"], 10, "label hidden")
            page.fill("#ticker-text", "News from the console")
            page.click("#ticker-set")
            daemon.wait_for(lambda s: s["scene"]["ticker"] == "News from the console", 10,
                            "ticker set")
            page.wait_for_function("document.getElementById('layer-ticker') !== null "
                                   "&& document.getElementById('layer-ticker').checked")
            time.sleep(0.5)  # (the preview's next frame)
            changed = _snapshot(base).astype(int)
            top_right = (slice(0, 60), slice(440, 640))
            gone = np.abs(changed[top_right] - labelled[top_right]).mean()
            band = (slice(330, 360), slice(0, 640))
            ticker = np.abs(changed[band] - labelled[band]).mean()
            print(f"label gone: {gone:.1f}, ticker's band: {ticker:.1f} (mean |difference|)")
            assert gone > 3 and ticker > 10

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
                ("/api/scene", b'{"layer": "weather", "visible": true}',
                 {**bearer, "Content-Type": "application/json"}, "POST"),
                ("/api/scene", b'{"layer": "ticker"}',
                 {**bearer, "Content-Type": "application/json"}, "POST"),
                ("/api/scene", b'{"layer": "logo", "visible": true, "command": "skip"}',
                 {**bearer, "Content-Type": "application/json"}, "POST"),
                ("/api/scene", b'{"layer": "logo", "visible": true}',
                 {"Content-Type": "application/json"}, "POST"),
            ]
            got = [await asyncio.to_thread(_call, port, *c) for c in calls]
            given = got[2][2]["Set-Cookie"].split(";")[0]  # what the browser sends back
            got.append(await asyncio.to_thread(_call, port, "/api/status", None,
                                               {"Cookie": given}))
            return got
        finally:
            await server.aclose()

    (bare, wrong, right, status, form, empty, unknown, no_broker, raw_token, bad_layer,
     no_change, foreign, scene_no_token, cookie) = asyncio.run(run())
    assert bare[0] == 401 and "token" in bare[1]
    assert wrong[0] == 401
    assert right[0] == 303 and "avatarcast_token=" in right[2]["Set-Cookie"]
    assert "s3cret-token" not in right[2]["Set-Cookie"]  # a signature, never the token
    assert "HttpOnly" in right[2]["Set-Cookie"] and "Max-Age=604800" in right[2]["Set-Cookie"]
    assert status[0] == 200 and json.loads(status[1]) == {"state": "idle"}
    assert form[0] == 415 and "JSON" in form[1]
    assert empty[0] == 400 and "text" in empty[1]
    assert unknown[0] == 404 and "skip, clear, pause, resume" in unknown[1]
    assert no_broker[0] == 503 and "could not publish" in no_broker[1]
    assert raw_token[0] == 401  # a cookie holding the token itself is not one we set
    assert cookie[0] == 200
    assert bad_layer[0] == 400 and "layer" in bad_layer[1] and "\n" not in bad_layer[1]
    assert no_change[0] == 400 and "scene" in no_change[1]
    assert foreign[0] == 400 and "command: not a field" in foreign[1]
    assert scene_no_token[0] == 401
    assert served("127.0.0.1", None) and not served("0.0.0.0", None)
    assert served("0.0.0.0", "t")


@pytest.mark.services
def test_without_a_token_only_calls_addressed_to_the_loopback_act(queues: QueueNames) -> None:
    """Served on the loopback without a token, the address is the authority: a DNS-rebinding
    page or a same-host proxy for another name (a foreign Host) is refused, and so is a page of
    another origin posting to the loopback; the console's own calls publish."""
    port = free_port()
    console = Console(broker=BrokerSettings(url=AMQP, speak_queue=queues.speak,
                                            control_queue=queues.control,
                                            dead_letter_queue=queues.dead),
                      status=lambda: {"state": "idle"}, preview=PreviewTap(2, 30, 240),
                      token=None)
    say = b'{"text": "Only from here."}'
    js = {"Content-Type": "application/json"}
    foreign = {"Host": "rebind.example.net"}

    async def run() -> list[tuple[int, str, dict[str, str]]]:
        server = HttpPort("127.0.0.1", port, lambda: {}, None, console.add_routes)
        await server.start()
        try:
            calls = [
                ("/api/say", say, {**js, **foreign}, "POST"),
                ("/api/control/clear", b"{}", {**js, **foreign}, "POST"),
                ("/api/status", None, foreign, None),
                ("/api/say", say, {**js, "Origin": "http://evil.example"}, "POST"),
                ("/api/say", say, {**js, "Origin": "null"}, "POST"),
                ("/api/say", say, {**js, "Origin": f"http://127.0.0.1:{port}"}, "POST"),
                ("/api/say", say, {**js, "Host": f"localhost:{port}"}, "POST"),
                ("/api/status", None, {}, None),
            ]
            return [await asyncio.to_thread(_call, port, *c) for c in calls]
        finally:
            await server.aclose()

    (rebound, clear, peek, evil, null, own, localhost, status) = asyncio.run(run())
    for refused in (rebound, clear, peek):
        assert refused[0] == 403 and "rebind.example.net" in refused[1], refused
    assert evil[0] == 403 and null[0] == 403 and "another origin" in evil[1]
    assert own[0] == 200 and localhost[0] == 200 and status[0] == 200
    published = [json.loads(m.body) for m in drain(queues.speak)]
    assert [m["text"] for m in published] == ["Only from here.", "Only from here."]
    assert drain(queues.control) == []  # the foreign clear published nothing


def test_a_client_that_keeps_guessing_is_held_off() -> None:
    port = free_port()
    console = Console(broker=BrokerSettings(url="amqp://guest:guest@127.0.0.1:1/"),
                      status=lambda: {"state": "idle"}, preview=PreviewTap(2, 30, 240),
                      token="s3cret-token")

    async def run() -> list[tuple[int, str, dict[str, str]]]:
        server = HttpPort("127.0.0.1", port, lambda: {}, None, console.add_routes)
        await server.start()
        try:
            wrong = [await asyncio.to_thread(_call, port, f"/?token=guess-{n}")
                     for n in range(MISSES_ALLOWED)]
            right = await asyncio.to_thread(_call, port, "/api/status", None,
                                            {"Authorization": "Bearer s3cret-token"})
            return [*wrong, right]
        finally:
            await server.aclose()

    *wrong, held = asyncio.run(run())
    assert all(w[0] == 401 for w in wrong)
    # Held off for the window, the right token included (a guesser learns nothing more).
    assert held[0] == 429 and 1 <= int(held[2]["Retry-After"]) <= 60


def test_the_cookie_expires_and_outlives_no_token_change() -> None:
    now = [1_000_000.0]
    access = Access("s3cret-token", clock=lambda: now[0])
    cookie = access.cookie()
    assert "s3cret-token" not in cookie

    def shows(value: str) -> bool:
        return access.allowed(make_mocked_request(
            "GET", "/api/status", headers={"Cookie": f"{COOKIE}={value}"}))

    assert shows(cookie)
    now[0] += COOKIE_MAX_AGE_S - 1
    assert shows(cookie)
    now[0] += 2
    assert not shows(cookie)  # a week old: open /?token=... again
    assert not shows(Access("another-token", clock=lambda: now[0]).cookie())
    issued, mac = Access("s3cret-token", clock=lambda: now[0]).cookie().split(".")
    assert shows(f"{issued}.{mac}") and not shows(f"{int(issued) + 1}.{mac}")
