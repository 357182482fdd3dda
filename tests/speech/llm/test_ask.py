"""`ask`: a question for an OpenAI-compatible chat endpoint (a local server speaking the
streaming API), answered on air sentence by sentence as the answer streams in: the first
sentence airs before the answer is complete; the answer's text is in the lifecycle events;
caps, a wrong key, a server that fails or stalls."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from avatarcast.broker.messages import AskMessage, MessageError, parse_message
from avatarcast.settings import LLMSettings
from avatarcast.speech.llm.chat import ChatClient, LLMError
from avatarcast.speech.llm.sentences import sentences
from harness.chat_server import ANSWER, KEY, ChatServer
from harness.daemon import DaemonProc, QueueNames, publish
from harness.events import EventTap


async def _pieces(*parts: str) -> AsyncGenerator[str, None]:
    for p in parts:
        yield p


def test_sentences_come_out_as_soon_as_they_are_complete() -> None:
    async def run() -> list[str]:
        return [s async for s in sentences(_pieces(
            "Hello there, fr", "iends. It is 3.5 degrees, e.g. cold", ". Bye", "!", " Ok."))]

    assert asyncio.run(run()) == ["Hello there, friends.", "It is 3.5 degrees, e.g. cold.",
                                  "Bye! Ok."]


def test_a_sentence_comes_out_when_the_model_pauses_after_it() -> None:
    """A model that sends a sentence and then thinks (a loaded or local one): the sentence is
    out during the pause, not when the next one begins. The pieces go on only once the first
    sentence is out (within 5 s): a splitter that waits for the next piece never gets it."""
    async def run() -> list[str]:
        out: list[str] = []
        first_out = asyncio.Event()

        async def model() -> AsyncGenerator[str, None]:
            yield "The first sentence is "
            yield "complete. "
            await asyncio.wait_for(first_out.wait(), 5)
            yield "Hi."  # short, and then a pause too
            await asyncio.sleep(1.0)
            yield " The last one"

        async for s in sentences(model()):
            out.append(s)
            first_out.set()
        return out

    assert asyncio.run(run()) == ["The first sentence is complete.", "Hi.", "The last one"]


def test_ask_messages_are_validated() -> None:
    msg = parse_message(b'{"type": "ask", "prompt": "Why?"}', "q-1")
    assert isinstance(msg, AskMessage) and msg.id == "q-1" and msg.text == "Why?"
    with pytest.raises(MessageError, match="prompt"):
        parse_message(b'{"type": "ask", "id": "q", "prompt": "   "}')
    with pytest.raises(MessageError, match="intro"):
        parse_message(b'{"type": "ask", "id": "q", "prompt": "Why?", "intro": "a\\u0007b"}')


def _client(server: ChatServer, **extra: object) -> ChatClient:
    return ChatClient(LLMSettings(base_url=server.base_url, api_key=KEY, model="local",  # type: ignore[arg-type]
                                  timeout_s=2, **extra), attempts=2)


async def _answer(client: ChatClient, prompt: str = "Why rainbows?") -> str:
    await client.start()
    try:
        return "".join([p async for p in client.answer(prompt, None)])
    finally:
        await client.aclose()


def test_the_chat_client_streams_caps_and_fails_clearly() -> None:
    with ChatServer() as server:
        assert asyncio.run(_answer(_client(server))) == ANSWER
        sent = server.requests[0]
        assert sent["stream"] is True and sent["model"] == "local"
        assert [m["role"] for m in sent["messages"]] == ["system", "user"]
        assert asyncio.run(_answer(_client(server, max_chars=60))) == ANSWER[:60]
        server.fail = [503]
        asked = len(server.requests)
        assert asyncio.run(_answer(_client(server))) == ANSWER  # retried once, then answered
        assert len(server.requests) == asked + 2
        server.fail = [500, 500, 500]
        asked = len(server.requests)
        with pytest.raises(LLMError, match="gave up after 2 attempts"):
            asyncio.run(_answer(_client(server)))
        assert len(server.requests) == asked + 2  # both attempts reached the server, no third
    with ChatServer() as server:
        bad = ChatClient(LLMSettings(base_url=server.base_url, api_key="sk-nope-123456789"),  # type: ignore[arg-type]
                         attempts=2)
        with pytest.raises(LLMError, match="refused the API key") as info:
            asyncio.run(_answer(bad))
        assert "sk-nope-123456789" not in str(info.value) and len(server.requests) == 1


def _env(server: ChatServer, **extra: str) -> dict[str, str]:
    return {"AVATARCAST_LLM__BASE_URL": server.base_url, "AVATARCAST_LLM__API_KEY": KEY,
            **extra}


def _asked(tmp_path: Path, queues: QueueNames, server: ChatServer, body: dict[str, str],
           **env: str) -> tuple[dict[str, dict[str, Any]], DaemonProc]:
    """A daemon answers `body` with `server`: its events by name, and the (stopped) daemon."""
    daemon = DaemonProc(tmp_path / "d", queues, _env(server, **env))
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        with EventTap(queues.events) as tap:
            publish(queues.speak, body)
            events = tap.wait_for(lambda ev: any(e["id"] == body["id"] and e["event"] in
                                                 ("finished", "failed") for e in ev),
                                  90, "answered")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    return {e["event"]: e for e in events if e["id"] == body["id"]}, daemon


@pytest.mark.services
def test_an_answer_airs_while_it_is_still_being_written(tmp_path: Path,
                                                        queues: QueueNames) -> None:
    with ChatServer(hold_after_first_s=3.0) as server:
        mine, daemon = _asked(tmp_path, queues, server, {
            "type": "ask", "id": "q-1", "prompt": "Why rainbows?",
            "system": "Answer like a weather presenter."})
    assert mine["finished"]["answer"] == ANSWER, mine
    # The first sentence was on air before the server had written the rest of the answer.
    assert server.finished_at is not None and mine["on_air"]["at"] < server.finished_at
    assert server.requests[0]["messages"][0]["content"] == "Answer like a weather presenter."
    assert KEY not in daemon.log()


@pytest.mark.services
def test_a_model_that_thinks_between_sentences_is_heard_sentence_by_sentence(
    tmp_path: Path, queues: QueueNames,
) -> None:
    """Each sentence sent at once, the next two seconds later (a loaded or local model): the
    first airs before the second has begun, each then as it comes; the answer whole."""
    with ChatServer(sentence_gap_s=2.0) as server:
        mine, _ = _asked(tmp_path, queues, server,
                         {"type": "ask", "id": "q-3", "prompt": "Why rainbows?"})
    assert mine["finished"]["answer"] == ANSWER, mine
    assert len(server.sentence_starts) == 3
    assert mine["on_air"]["at"] < server.sentence_starts[1], (mine["on_air"],
                                                              server.sentence_starts)


@pytest.mark.services
def test_an_intro_airs_first_while_the_model_is_already_asked(
    tmp_path: Path, queues: QueueNames,
) -> None:
    """An ask with an intro (a chat question, named: "Maria asks: ...") speaks it, then the
    answer. The model is asked as the message begins, not once the intro is spoken: its
    answer was being written before the intro went on air."""
    transcript = tmp_path / "aired.jsonl"
    intro = "Maria asks: why do rainbows appear?"
    with ChatServer() as server:
        mine, _ = _asked(tmp_path, queues, server, {
            "type": "ask", "id": "q-6", "prompt": "Why rainbows?", "intro": intro,
        }, AVATARCAST_CAPTIONS__TRANSCRIPT_PATH=str(transcript))
    assert mine["finished"]["answer"] == ANSWER, mine
    (entry,) = [json.loads(x) for x in transcript.read_text().splitlines()]
    assert " ".join(w[2] for w in entry["words"]) == f"{intro} {ANSWER}"
    assert server.sentence_starts[0] < mine["on_air"]["at"], (server.sentence_starts,
                                                              mine["on_air"])


@pytest.mark.services
def test_an_answer_that_stalls_ends_with_what_was_said_and_none_fails(
    tmp_path: Path, queues: QueueNames,
) -> None:
    with ChatServer(stall_after_first=True) as server:
        daemon = DaemonProc(tmp_path / "d", queues, _env(server, AVATARCAST_LLM__TIMEOUT_S="3"))
        try:
            daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
            env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
            env.update(queues.env())
            done = subprocess.run([sys.executable, "-m", "avatarcast", "ask", "--wait",
                                   "--id", "q-2", "Why rainbows?"], env=env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
            assert "answer: Rainbows appear when sunlight passes through raindrops." in \
                done.stdout
            server.fail = [401]  # the key is wrong now: no answer at all
            failed = subprocess.run([sys.executable, "-m", "avatarcast", "ask", "--wait",
                                     "Again?"], env=env, cwd=tmp_path, capture_output=True,
                                    text=True, timeout=120)
            assert failed.returncode == 1 and "failed:" in failed.stderr
            assert "HTTP 401" in failed.stderr
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    assert "the answer broke off" in daemon.log()
