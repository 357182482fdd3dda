"""A local server speaking OpenAI's chat-completions API with streaming (server-sent events),
for the tests: it answers with a scripted text word by word, and can hold its answer after the
first sentence (so a test sees the first sentence on air before the answer is complete), fail
with a status, or stall. Runs on a thread of its own, so a daemon process can use it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .services import free_port
from .threadserver import ThreadedApp

KEY = "sk-chat-local-0123456789"
ANSWER = ("Rainbows appear when sunlight passes through raindrops. Each drop bends the light "
          "and splits it into colours. That is why you see them after a shower.")


@dataclass
class ChatServer(ThreadedApp):
    port: int = field(default_factory=free_port)
    answer: str = ANSWER
    hold_after_first_s: float = 0.0  # pause once the second sentence has begun
    stall_after_first: bool = False  # never send more once the second sentence has begun
    # A pause after each sentence's last word, before the next one begins (a model thinking
    # between sentences); `sentence_starts`: when each sentence's first word was sent.
    sentence_gap_s: float = 0.0
    sentence_starts: list[float] = field(default_factory=list)
    fail: list[int] = field(default_factory=list)  # statuses to answer with first
    word_delay_s: float = 0.01
    requests: list[dict[str, Any]] = field(default_factory=list)
    finished_at: float | None = None  # when the last piece was sent

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    def __enter__(self) -> ChatServer:
        super().__enter__()
        return self

    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return web.json_response({"error": {"message": "Incorrect API key provided."}},
                                     status=401)
        return web.json_response({"object": "list", "data": [{"id": "local",
                                                              "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return web.json_response({"error": {"message": "Incorrect API key provided."}},
                                     status=401)
        if self.fail:
            return web.json_response({"error": {"message": "simulated"}},
                                     status=self.fail.pop(0), headers={"Retry-After": "0"})
        if not body.get("stream"):
            return web.json_response({"error": {"message": "this server only streams"}},
                                     status=400)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        first_end = self.answer.index(". ") + 1
        sent, held = 0, False
        after_end = True
        for token in re.findall(r"\s*\S+", self.answer):  # each word with the space before it
            if after_end:
                if self.sentence_starts and self.sentence_gap_s:
                    await asyncio.sleep(self.sentence_gap_s)
                self.sentence_starts.append(time.time())
            after_end = token.endswith((".", "!", "?"))
            await resp.write(_event(body.get("model", ""), token))
            sent += len(token)
            await asyncio.sleep(self.word_delay_s)
            # Held once the second sentence has begun: its first word shows the first one
            # ended (as a model's next token does).
            if not held and sent > first_end + 1:
                held = True
                await asyncio.sleep(3600 if self.stall_after_first else self.hold_after_first_s)
        self.finished_at = time.time()
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _event(model: str, content: str) -> bytes:
    chunk = {"id": "chatcmpl-local", "object": "chat.completion.chunk", "model": model,
             "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()
