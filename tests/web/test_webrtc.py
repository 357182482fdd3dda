"""The WebRTC view (WHEP): a real headless Chromium watches the running daemon's program over
WebRTC (picture at the configured width, sound that carries the speech while a message is on
air), DELETE and shutdown end the peers; and the endpoint's answers over real HTTP, with a
real aiortc client making the offers."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avatarcast.settings import Settings, WebRTCSettings
from avatarcast.web.port import HttpPort
from avatarcast.web.webrtc.feed import scaled
from avatarcast.web.webrtc.view import open_whep
from harness.daemon import DaemonProc, QueueNames, Receiver, publish
from harness.events import EventTap
from harness.services import NginxRtmp, free_port
from harness.whep import CHROMIUM, CHROMIUM_ARGS, WhepViewer, rms_between


def _viewers(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        found = re.search(r"^avatarcast_webrtc_viewers (\S+)$", r.read().decode(), re.M)
    assert found is not None, "no avatarcast_webrtc_viewers on /metrics"
    return float(found.group(1))


def _wait_viewers(port: int, count: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while (now := _viewers(port)) != count:
        assert time.monotonic() < deadline, f"{now} WebRTC viewers, not {count}"
        time.sleep(0.1)


@pytest.mark.services
def test_the_webrtc_view_in_a_real_browser(tmp_path: Path, queues: QueueNames,
                                           rtmp_server: NginxRtmp) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "Debian's chromium is missing: scripts/install-deps.sh dev"
    url = rtmp_server.url("webrtc")
    receiver = Receiver(url, tmp_path / "received.flv", idle_timeout_s=60)
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url]),
        "AVATARCAST_VIDEO__WIDTH": "640", "AVATARCAST_VIDEO__HEIGHT": "360",
        "AVATARCAST_WEBRTC__WIDTH": "320", "AVATARCAST_WEBRTC__FPS": "15",
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")
        port = daemon.health_port
        base = f"http://127.0.0.1:{port}"
        assert _viewers(port) == 0
        with EventTap(queues.events) as tap, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            viewer = WhepViewer(browser.new_page(), base)
            started = viewer.start()
            assert started["status"] == 201, started
            assert started["location"].startswith("/whep/")
            # The picture decodes at the view's width (the stream's 640 scaled to 320).
            first = viewer.wait(lambda s: s["video"]["framesDecoded"] > 15 and s["width"] > 0
                                and s["audio"]["packets"] > 25, 30, "frames and sound")
            assert (first["width"], first["height"]) == (320, 180), first
            assert first["video"]["codec"] in ("video/VP8", "video/H264"), first
            assert first["audio"]["codec"] == "audio/opus", first
            assert _viewers(port) == 1

            msg_id = f"webrtc-{time.monotonic_ns()}"
            # (Playwright's sync API runs a loop on this thread: publish from another one.)
            with ThreadPoolExecutor(1) as pool:
                pool.submit(publish, queues.speak, {
                    "type": "speak", "id": msg_id,
                    "text": "Hello to everybody watching over WebRTC."}).result()
            events = tap.wait_for(lambda ev: any(e["id"] == msg_id and e["event"] == "finished"
                                                 for e in ev), 60, "the message aired")
            aired = {e["event"]: e["at"] for e in events if e["id"] == msg_id}
            time.sleep(1.0)  # the end of the speech on its way to the browser
            levels = viewer.levels()
            speaking = rms_between(levels, aired["on_air"], aired["finished"])
            before = rms_between(levels, aired["on_air"] - 1.5, aired["on_air"] - 0.2)
            assert speaking > 0.02 and speaking > 5 * before, (speaking, before)
            later = viewer.stats()
            assert later["video"]["framesDecoded"] > first["video"]["framesDecoded"] + 15
            assert later["audio"]["packets"] > first["audio"]["packets"] + 50

            # DELETE ends the session; the resource is gone after it.
            location = started["location"]
            assert viewer.stop() == 200
            assert _viewers(port) == 0
            gone = urllib.request.Request(base + location, method="DELETE")
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(gone, timeout=5)
            assert err.value.code == 404

            # The console's player: Live swaps the MJPEG preview for the WebRTC view, and back.
            console = browser.new_page()
            console.goto(base + "/")
            console.click("#live-toggle")
            console.wait_for_function("document.getElementById('live').videoWidth === 320",
                                      timeout=30_000)
            assert console.is_hidden("#preview") and _viewers(port) == 1
            console.click("#live-toggle")
            console.wait_for_function("!document.getElementById('preview').hidden")
            _wait_viewers(port, 0)
            console.close()

            # A viewer still watching when the daemon stops is closed with it.
            last = WhepViewer(browser.new_page(), base)
            assert last.start()["status"] == 201
            last.wait(lambda s: s["video"]["framesDecoded"] > 5, 30, "the last viewer's frames")
            assert daemon.stop() == 0
            browser.close()
    finally:
        daemon.kill()
        receiver.finish()
    log = daemon.log()
    assert "left (deleted)" in log and "left (shutdown)" in log, log[-3000:]
    assert "did not finish" not in log and "Traceback" not in log, log[-3000:]


# -- the endpoint's answers ---------------------------------------------------------------------

async def _offer(kinds: tuple[str, ...] = ("video", "audio"),
                 direction: str = "recvonly") -> tuple[Any, str]:
    """A real offer from an aiortc client."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in kinds:
        pc.addTransceiver(kind, direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, str(pc.localDescription.sdp)


def _call(port: int, method: str, path: str, body: str | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=body.encode() if body is not None else None,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def test_the_whep_endpoint_answers_over_http() -> None:
    port = free_port()
    sdp = {"Content-Type": "application/sdp", "Authorization": "Bearer s3cret"}

    async def run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        whep = open_whep(Settings(webrtc=WebRTCSettings(max_viewers=1),
                                  health={"token": "s3cret"}), loop)
        assert whep is not None
        server = HttpPort("127.0.0.1", port, lambda: {}, None, whep.add_routes)
        await server.start()
        clients: list[Any] = []

        async def call(*args: Any, **kw: Any) -> tuple[int, str, dict[str, str]]:
            return await asyncio.to_thread(_call, port, *args, **kw)

        try:
            out: dict[str, Any] = {}
            pc, offer = await _offer()
            clients.append(pc)
            out["options"] = await call("OPTIONS", "/whep")
            out["no_token"] = await call("POST", "/whep", offer,
                                         {"Content-Type": "application/sdp"})
            out["form"] = await call("POST", "/whep", offer,
                                     {**sdp, "Content-Type": "text/plain"})
            out["garbage"] = await call("POST", "/whep", "hello", sdp)
            sender, send_offer = await _offer(direction="sendonly")
            clients.append(sender)
            out["sendonly"] = await call("POST", "/whep", send_offer, sdp)
            out["first"] = await call("POST", "/whep", offer, sdp)
            out["viewers_after_first"] = whep.viewers
            pc2, offer2 = await _offer(("video",))
            clients.append(pc2)
            out["full"] = await call("POST", "/whep", offer2, sdp)
            out["unknown"] = await call("DELETE", "/whep/nope", None, sdp)
            out["delete"] = await call("DELETE", out["first"][2]["Location"], None, sdp)
            out["viewers_after_delete"] = whep.viewers
            out["second"] = await call("POST", "/whep", offer2, sdp)
            await whep.aclose()  # with a viewer still there, as at shutdown
            out["viewers_after_close"] = whep.viewers
            return out
        finally:
            for pc in clients:
                await pc.close()
            await server.aclose()
            # Nothing of the peers' is left running (the test's own clients closed too; aiortc
            # ends its connection task a few loop turns after close).
            for _ in range(100):
                out["tasks_left"] = [repr(t.get_coro()) for t in asyncio.all_tasks()
                                     if t is not asyncio.current_task()]
                if not out["tasks_left"]:
                    break
                await asyncio.sleep(0.02)

    out = asyncio.run(run())
    status, _, headers = out["options"]
    assert status == 204 and headers["Accept-Post"] == "application/sdp"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert out["no_token"][0] == 401 and "token" in out["no_token"][1]
    assert out["form"][0] == 415 and "application/sdp" in out["form"][1]
    assert out["garbage"][0] == 400 and "cannot answer" in out["garbage"][1]
    assert out["sendonly"][0] == 400 and "receives no audio or video" in out["sendonly"][1]
    status, answer, headers = out["first"]
    assert status == 201 and headers["Content-Type"].startswith("application/sdp")
    assert headers["Location"].startswith("/whep/")
    # Non-trickle: the answer carries its ICE candidates.
    assert "a=candidate:" in answer and "a=end-of-candidates" in answer
    assert re.search(r"^a=sendonly", answer, re.M)
    assert out["viewers_after_first"] == 1
    assert out["full"][0] == 503 and "max_viewers" in out["full"][1]
    assert out["unknown"][0] == 404
    assert out["delete"][0] == 200 and out["viewers_after_delete"] == 0
    assert out["second"][0] == 201
    assert out["viewers_after_close"] == 0 and out["tasks_left"] == []


async def _split_post(port: int, offer: str, go: asyncio.Event) -> tuple[int, str]:
    """POST /whep in two parts: the request's head now, its body (the offer) once `go` is set,
    as a client whose offer comes in a second packet; (status, body) of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = offer.encode()
    writer.write(f"POST /whep HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                 f"application/sdp\r\nContent-Length: {len(body)}\r\nConnection: close"
                 "\r\n\r\n".encode())
    await writer.drain()
    await go.wait()
    writer.write(body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, text = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), text.decode()


def test_parallel_offers_get_exactly_max_viewers() -> None:
    """Six offers at once for two places. Each handler has its request's head and waits for
    the offer when the offers arrive (the sleep sets that up; the cap must hold in any order):
    a cap checked before the offer is read, and taken after, lets all six in."""
    port = free_port()

    async def run() -> tuple[list[tuple[int, str]], int]:
        loop = asyncio.get_running_loop()
        whep = open_whep(Settings(webrtc=WebRTCSettings(max_viewers=2)), loop)
        assert whep is not None
        server = HttpPort("127.0.0.1", port, lambda: {}, None, whep.add_routes)
        await server.start()
        clients = [await _offer() for _ in range(6)]
        try:
            go = asyncio.Event()
            posts = [asyncio.create_task(_split_post(port, sdp, go)) for _, sdp in clients]
            await asyncio.sleep(0.5)
            go.set()
            answers = await asyncio.gather(*posts)
            return answers, whep.viewers
        finally:
            await whep.aclose()
            for pc, _ in clients:
                await pc.close()
            await server.aclose()

    answers, viewers = asyncio.run(run())
    got = [(status, text[:60]) for status, text in answers]
    assert sorted(status for status, _ in answers) == [201, 201, 503, 503, 503, 503], got
    assert all("max_viewers" in text for status, text in answers if status == 503), got
    assert viewers == 2


def test_an_offer_is_bounded_in_size_and_in_media_sections() -> None:
    port = free_port()

    async def run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        whep = open_whep(Settings(), loop)  # 64 KiB and 4 media sections at most
        assert whep is not None
        server = HttpPort("127.0.0.1", port, lambda: {}, None, whep.add_routes)
        await server.start()
        sdp = {"Content-Type": "application/sdp"}
        many, many_offer = await _offer(("video",) * 9 + ("audio",))
        pc, offer = await _offer()
        # The same offer, grown past 64 KiB by attributes nobody reads.
        session, media = offer.split("m=", 1)
        padded = session + ("a=x-pad:" + "x" * 80 + "\r\n") * 900 + "m=" + media
        try:
            out: dict[str, Any] = {}
            out["many"] = await asyncio.to_thread(_call, port, "POST", "/whep", many_offer, sdp)
            out["large"] = await asyncio.to_thread(_call, port, "POST", "/whep", padded, sdp)
            out["viewers_after_refusals"] = whep.viewers
            out["fine"] = await asyncio.to_thread(_call, port, "POST", "/whep", offer, sdp)
            out["viewers"] = whep.viewers
            out["sizes"] = (len(many_offer), len(padded), len(offer))
            return out
        finally:
            await whep.aclose()
            await many.close()
            await pc.close()
            await server.aclose()

    out = asyncio.run(run())
    assert out["sizes"][1] > 64 * 1024 > out["sizes"][0]
    status, text, _ = out["many"]
    assert status == 400 and "10 media sections" in text and "webrtc.max_media_sections" in text
    status, text, _ = out["large"]
    assert status == 413 and "webrtc.max_offer_bytes" in text, (status, text)
    assert out["viewers_after_refusals"] == 0
    assert out["fine"][0] == 201 and out["viewers"] == 1


def test_the_view_follows_the_consoles_access_rule() -> None:
    async def run() -> tuple[object, object, object]:
        loop = asyncio.get_running_loop()
        open_lan = open_whep(Settings(health={"host": "0.0.0.0"}), loop)
        with_token = open_whep(Settings(health={"host": "0.0.0.0", "token": "t"}), loop)
        off = open_whep(Settings(webrtc=WebRTCSettings(enabled=False)), loop)
        return open_lan, with_token, off

    open_lan, with_token, off = asyncio.run(run())
    assert open_lan is None and off is None and with_token is not None


def test_the_view_is_off_without_aiortc(monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "aiortc", None)  # import aiortc fails, as if missing
    monkeypatch.delitem(sys.modules, "avatarcast.web.webrtc.whep", raising=False)

    async def run() -> object:
        return open_whep(Settings(), asyncio.get_running_loop())

    assert asyncio.run(run()) is None
    assert "WebRTC view off: aiortc is not installed" in caplog.text


def test_the_feed_costs_a_comparison_until_someone_watches() -> None:
    """The pacer's tap hands nothing over while nobody watches; with a viewer, every tick's
    sound and every second frame (30 -> 15 fps), scaled, reach the tracks in order."""

    class Sink:
        def __init__(self) -> None:
            self.got: list[tuple[int, np.ndarray]] = []

        def push(self, n: int, data: np.ndarray) -> None:
            self.got.append((n, data))

    frame = np.zeros((360 * 3 // 2, 640), np.uint8)
    audio = np.ones(1600, np.int16)
    # Unwatched, the tap never touches the loop (a closed one would raise if it did).
    from avatarcast.web.webrtc.feed import ProgramFeed

    closed = asyncio.new_event_loop()
    closed.close()
    unwatched = ProgramFeed(loop=closed, stream_fps=30, fps=15, width=320)
    for n in range(5):
        unwatched.offer(n, frame, audio)

    async def run() -> tuple[Sink, Sink]:
        feed = ProgramFeed(loop=asyncio.get_running_loop(), stream_fps=30, fps=15, width=320)
        sound, picture = Sink(), Sink()
        feed.add(audio=sound, video=picture)

        def pacer() -> None:
            for n in range(10, 20):
                feed.offer(n, frame, audio)
                time.sleep(1 / 30)

        await asyncio.to_thread(pacer)
        for _ in range(100):
            if picture.got and picture.got[-1][0] == 18:
                break
            await asyncio.sleep(0.02)
        await feed.aclose()
        return sound, picture

    sound, picture = asyncio.run(run())
    assert [n for n, _ in sound.got] == list(range(10, 20))
    # Every second frame; a scaler that falls behind drops the oldest, never the newest.
    shown = [n for n, _ in picture.got]
    assert shown == sorted(shown) and set(shown) <= {10, 12, 14, 16, 18} and shown[-1] == 18
    assert picture.got[0][1].shape == (180 * 3 // 2, 320)


def test_scaling_keeps_the_picture() -> None:
    h, w = 720, 1280
    frame = np.empty((h * 3 // 2, w), np.uint8)
    frame[:h] = (np.arange(w) * 255 // (w - 1))[None, :]  # luma: a left-to-right ramp
    flat = frame.reshape(-1)
    flat[h * w : h * w + h * w // 4] = 60  # U
    flat[h * w + h * w // 4 :] = 200  # V
    small = scaled(frame, 640)
    assert small.shape == (360 * 3 // 2, 640)
    luma = small[:360].astype(int)
    assert abs(luma[:, 0].mean() - 0) <= 2 and abs(luma[:, -1].mean() - 255) <= 2
    assert np.all(np.diff(luma[180]) >= 0)
    sflat = small.reshape(-1)
    assert np.all(sflat[360 * 640 : 360 * 640 + 360 * 640 // 4] == 60)
    assert np.all(sflat[360 * 640 + 360 * 640 // 4 :] == 200)
    assert scaled(frame[: 240 * 3 // 2, :320], 640).shape == (360, 320)  # never upscaled
