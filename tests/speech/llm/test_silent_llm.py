"""An LLM that keeps its stream open and says nothing (SSE comments, empty deltas) must not
hold the channel: past `llm.timeout_s` without a word the ask fails with the reason, `skip`
ends it at once, and the texts behind it air. (It once held the channel for good while
/healthz said 200: every keep-alive reset the read timeout.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from avatarcast.settings import LLMSettings
from avatarcast.speech.llm.chat import ChatClient, LLMError
from harness.chat_server import KEY, ChatServer, _event
from harness.daemon import DaemonProc, QueueNames, drain, publish

pytestmark = pytest.mark.services


class SilentServer(ChatServer):
    """Answers 200 with an event stream of keep-alives and empty deltas, and no words."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        empty = {"object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": None}]}
        try:
            while True:
                await resp.write(b": keep-alive\n\n")
                await resp.write(f"data: {json.dumps(empty)}\n\n".encode())
                await asyncio.sleep(0.2)
        except (ConnectionResetError, asyncio.CancelledError):
            return resp


class TricklingServer(ChatServer):
    """Answers a word at a time, forever, never ending a sentence."""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            while True:
                await resp.write(_event("", " and"))
                await asyncio.sleep(0.2)
        except (ConnectionResetError, asyncio.CancelledError):
            return resp


async def _answer(server: ChatServer, **limits: float) -> str:
    client = ChatClient(LLMSettings(base_url=server.base_url, **limits), attempts=1)
    await client.start()
    said = ""
    try:
        async for piece in client.answer("Anyone there?", None):
            said += piece
    finally:
        await client.aclose()
    return said


def _bounded(server: ChatServer, **limits: float) -> str:
    # Keep-alives every 0.2 s would keep a read timeout from ever firing: without the
    # deadlines this would wait forever, so the test bounds it (and then fails).
    return asyncio.run(asyncio.wait_for(_answer(server, **limits), 20))


def test_keep_alives_are_silence_and_an_answer_has_a_deadline_in_all() -> None:
    with SilentServer() as silent, TricklingServer() as trickling:
        with pytest.raises(LLMError, match=r"sent no words for 1 s \(llm.timeout_s\)"):
            _bounded(silent, timeout_s=1)
        with pytest.raises(LLMError, match=r"longer than llm.answer_timeout_s \(2 s\)"):
            _bounded(trickling, timeout_s=1, answer_timeout_s=2)
    assert len(silent.requests) == 1


def ask(queues: QueueNames, msg_id: str) -> None:
    publish(queues.speak, {"type": "ask", "id": msg_id, "prompt": "Anyone there?"})


def test_skip_ends_an_ask_that_is_still_waiting_for_words(
    tmp_path: Path, queues: QueueNames
) -> None:
    with SilentServer() as server:
        daemon = DaemonProc(tmp_path / "d", queues, {
            "AVATARCAST_LLM__BASE_URL": server.base_url, "AVATARCAST_LLM__API_KEY": KEY,
            # Longer than this test waits for anything: only skip can end the ask.
            "AVATARCAST_LLM__TIMEOUT_S": "300",
        })
        try:
            daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
            ask(queues, "unanswered")
            publish(queues.speak, {"type": "speak", "id": "behind", "text": "Still here."})
            daemon.wait_for(lambda s: (s.get("rendering") or {}).get("id") == "unanswered", 30,
                            "asking")
            publish(queues.control, {"type": "control", "command": "skip"})
            st = daemon.wait_for(lambda s: "behind" in daemon.outcomes(s), 60, "behind settled")
            st = daemon.wait_for(lambda s: s["state"] == "idle", 30, "idle")
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    assert [(e["id"], e["outcome"]) for e in st["recent"]] == [
        ("unanswered", "skipped"), ("behind", "aired")]
    assert drain(queues.dead) == []
