"""A streaming chat-completions client (`POST {base_url}/chat/completions`, stream: true,
server-sent events): the answer's text, piece by piece.

Retries (a 429 or 5xx, a timeout, a refused connection) happen only before the first piece:
once the answer has started airing it cannot be asked for again. The answer is capped in
characters (`max_chars`; `max_tokens` is asked of the model), and the server may not stay
silent longer than `timeout_s`, before its first piece or between two (keep-alives and empty
deltas are silence), nor take longer than `answer_timeout_s` in all.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ...infra import httpretry
from ...infra.httpretry import Transient, server_says, with_retries
from ...settings import LLMSettings
from ..base import SpeechError

log = logging.getLogger(__name__)


class LLMError(SpeechError):
    """The LLM gave no answer; the message fails with this reason."""


class ChatClient:
    """Owned by the event loop."""

    def __init__(self, settings: LLMSettings, attempts: int) -> None:
        if settings.base_url is None:
            raise ValueError("llm.base_url is not set")
        self._s = settings
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._attempts = attempts
        self._client: Any = None

    async def start(self) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._s.timeout_s, connect=5.0))

    async def answer(self, prompt: str, system: str | None) -> AsyncGenerator[str, None]:
        """The answer's text as it streams in, at most max_chars of it."""
        body = {"model": self._s.model, "stream": True, "max_tokens": self._s.max_tokens,
                "messages": [{"role": "system", "content": system or self._s.system},
                             {"role": "user", "content": prompt}]}
        lines = await self._open(body)
        total = 0
        pieces = _pieces(lines)
        loop = asyncio.get_running_loop()
        ends = loop.time() + self._s.answer_timeout_s
        try:
            while True:
                # Silence is the lack of content: keep-alives, comments and empty deltas
                # are not an answer, and do not reset the deadline.
                wait = min(self._s.timeout_s, ends - loop.time())
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    if wait < self._s.timeout_s:
                        raise LLMError(f"llm answer took longer than llm.answer_timeout_s "
                                       f"({self._s.answer_timeout_s:g} s)",
                                       retryable=False) from None
                    raise LLMError(f"llm sent no words for {self._s.timeout_s:g} s "
                                   "(llm.timeout_s)", retryable=False) from None
                room = self._s.max_chars - total
                if len(piece) >= room:
                    yield piece[:room]
                    log.info("answer cut at llm.max_chars (%d)", self._s.max_chars)
                    return
                total += len(piece)
                yield piece
        finally:
            await pieces.aclose()
            await lines.aclose()

    async def _open(self, body: dict[str, Any]) -> Any:
        """The response's lines, once the server said 200; retried until then."""
        try:
            return await with_retries(lambda: self._request(body), self._attempts)
        except Transient as exc:
            raise LLMError(f"llm at {self._url}: {exc} (gave up after {self._attempts} "
                           "attempts)", retryable=False) from None

    async def _request(self, body: dict[str, Any]) -> AsyncIterator[str]:
        import httpx

        if self._client is None:
            raise LLMError("llm used before start()", retryable=False)
        headers = {"Accept": "text/event-stream"}
        if self._s.api_key is not None:
            headers["Authorization"] = f"Bearer {self._s.api_key.get_secret_value()}"
        try:
            req = self._client.build_request("POST", self._url, json=body, headers=headers)
            resp = await self._client.send(req, stream=True)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if resp.status_code != 200:
            try:
                said = server_says(await resp.aread())
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise Transient(f"HTTP {resp.status_code}, then {type(exc).__name__}") from None
            finally:
                await resp.aclose()
            if resp.status_code == 429 or resp.status_code >= 500:
                raise Transient(f"HTTP {resp.status_code}: {said}",
                                httpretry.retry_after(resp.headers.get("Retry-After")))
            what = ("refused the API key" if resp.status_code in (401, 403)
                    else f"refused the request for model {self._s.model!r}")
            raise LLMError(f"llm at {self._url} {what} (HTTP {resp.status_code}): {said}",
                           retryable=False)
        return _lines(resp)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _lines(resp: Any) -> AsyncIterator[str]:
    import httpx

    try:
        async for line in resp.aiter_lines():
            yield line
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise LLMError(f"llm answer broke off: {type(exc).__name__}", retryable=False) from None
    finally:
        await resp.aclose()


async def _pieces(lines: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """The content deltas of an SSE chat-completions stream, until [DONE]."""
    async for line in lines:
        if not line.startswith("data:"):
            continue  # comments, event names, keep-alives
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise LLMError(f"llm sent an event that is not JSON: {data[:100]!r}",
                           retryable=False) from None
        if isinstance(event, dict) and "error" in event:
            raise LLMError(f"llm error mid-answer: {server_says(data.encode())}",
                           retryable=False)
        for choice in event.get("choices", []) if isinstance(event, dict) else []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield str(content)
