"""The chat webhook over real HTTP on a free port: signed events and batches come out as
ChatMessage and Removal in their order; unsigned, badly signed, stale and replayed requests,
bodies off the schema, oversized ones and a full queue are refused with the right status and
one line, and nothing of them comes out; neither the secret nor a signature is logged; and the
documentation's openssl + curl example works as written."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarcast.app.chat.message import ChatMessage, Removal
from avatarcast.app.chat.twitch import ChatError
from avatarcast.app.chat.webhook import WebhookChat, parse

SECRET = "s3cret-for-the-webhook-tests-only"
DOC = Path(__file__).parents[3] / "docs" / "CHAT_WEBHOOK.md"
ANA = {"id": "tt-1", "platform": "tiktok", "user": "u-42", "display_name": "Ana",
       "text": "Why is the sky blue?", "at": 1764800000.5, "badges": ["moderator"]}


def signed(body: bytes, *, secret: str = SECRET, stamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if stamp is None else stamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Avatarcast-Timestamp": ts,
            "X-Avatarcast-Signature": f"sha256={mac}"}


def encode(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
async def chat() -> AsyncIterator[WebhookChat]:
    source = WebhookChat(SECRET, port=0, max_pending=100)
    await source.start()
    yield source
    await source.aclose()


@pytest.fixture
async def client(chat: WebhookChat) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{chat.port}") as c:
        yield c


async def post(client: httpx.AsyncClient, body: bytes, **sign: Any) -> httpx.Response:
    return await client.post("/chat", content=body, headers=signed(body, **sign))


async def test_signed_events_and_batches_come_out_in_order(
        chat: WebhookChat, client: httpx.AsyncClient) -> None:
    one = await post(client, encode(ANA))
    assert (one.status_code, one.json()) == (202, {"accepted": 1})
    batch = {"events": [
        {"id": "k-1", "platform": "Kick", "type": "paid", "user": "u-7", "amount": 5,
         "currency": "USD", "text": "Sing!"},
        {"id": "k-2", "type": "subscription", "user": "u-8", "tier": "1"},
        {"id": "k-3", "type": "removal", "message_id": "tt-1"},
        {"id": "k-4", "type": "removal", "user": "u-9", "platform": "kick"},
        {"id": "k-5", "user": "u-10", "text": "two\nlines\tand a bell\x07"}]}
    before = time.time()
    answer = await post(client, encode(batch))
    assert (answer.status_code, answer.json()) == (202, {"accepted": 5})
    assert chat.pending == 6 and chat.accepted == 6
    events = chat.events()
    got = [await anext(events) for _ in range(6)]
    assert got[0] == ChatMessage(platform="tiktok", id="tt-1", user="u-42", display_name="Ana",
                                 text="Why is the sky blue?", at=1764800000.5,
                                 badges=("moderator",))
    paid, sub = got[1], got[2]
    assert isinstance(paid, ChatMessage) and isinstance(sub, ChatMessage)
    assert (paid.platform, paid.kind, paid.amount, paid.currency, paid.display_name) == (
        "kick", "paid", 5.0, "USD", "u-7")
    assert (sub.platform, sub.kind, sub.tier, sub.text) == ("webhook", "subscription", "1", "")
    assert before <= sub.at <= time.time()
    assert got[3:5] == [Removal("webhook", message_id="tt-1"), Removal("kick", user="u-9")]
    assert isinstance(got[5], ChatMessage) and got[5].text == "two lines and a bell"
    await chat.aclose()
    with pytest.raises(StopAsyncIteration):  # closed: the reading ends
        await anext(events)


@pytest.mark.parametrize(("sign", "headers", "why"), [
    ({"secret": "another-secret-of-16+"}, {}, "bad X-Avatarcast-Signature"),
    ({}, {"X-Avatarcast-Signature": "sha256=" + "0" * 64}, "bad X-Avatarcast-Signature"),
    ({}, {"X-Avatarcast-Signature": ""}, "missing X-Avatarcast-Signature"),
    ({}, {"X-Avatarcast-Signature": "sha256=\xff\u00e9"}, "bad X-Avatarcast-Signature"),
    ({}, {"X-Avatarcast-Timestamp": "soon"}, "malformed X-Avatarcast-Timestamp"),
    ({"skew": -400}, {}, "over 300 s from this server's clock"),
    ({"skew": 400}, {}, "over 300 s from this server's clock"),
])
async def test_unsigned_badly_signed_and_stale_requests_are_refused(
        chat: WebhookChat, client: httpx.AsyncClient, sign: dict[str, Any],
        headers: dict[str, str], why: str) -> None:
    body = encode(ANA)
    if "skew" in sign:  # (from now: the parameters are made when the tests are collected)
        sign = {"stamp": int(time.time()) + sign["skew"]}
    sent = signed(body, **sign) | headers
    raw = {k.encode(): v.encode("latin-1") for k, v in sent.items()}  # (as sent: bytes)
    answer = await client.post("/chat", content=body, headers=raw)
    assert answer.status_code == 401 and why in answer.json()["error"]
    signature = sent["X-Avatarcast-Signature"].removeprefix("sha256=")
    assert not signature or signature not in answer.text
    assert chat.pending == 0 and chat.refused == 1


async def test_a_replayed_request_is_refused(chat: WebhookChat,
                                             client: httpx.AsyncClient) -> None:
    body = encode(ANA)
    headers = signed(body)
    assert (await client.post("/chat", content=body, headers=headers)).status_code == 202
    again = await client.post("/chat", content=body, headers=headers)
    assert again.status_code == 409 and "accepted already" in again.json()["error"]
    shouted = headers | {"X-Avatarcast-Signature": headers["X-Avatarcast-Signature"].upper()
                         .replace("SHA256=", "sha256=")}
    assert (await client.post("/chat", content=body, headers=shouted)).status_code == 409
    assert chat.pending == 1


TOO_MANY = {"events": [dict(ANA, id=f"e-{i}") for i in range(101)]}
ONE_BAD = {"events": [ANA, dict(ANA, id="e-2", text="x" * 2001), dict(ANA, id="e-3")]}


@pytest.mark.parametrize(("body", "why"), [
    (b'{"id": "a", "user": ', "the body is not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (encode(dict(ANA, type="raid")), "type: Input should be 'message', 'paid'"),
    (encode({k: v for k, v in ANA.items() if k != "id"}), "id: Field required"),
    (encode({k: v for k, v in ANA.items() if k != "user"}), "user: required for type message"),
    (encode(dict(ANA, text="  ")), "text: required (not blank) for type message"),
    (encode(dict(ANA, text="x" * 2001)), "text: String should have at most 2000 characters"),
    (encode(TOO_MANY), "events: List should have at most 100 items"),
    (encode({"events": []}), "events: List should have at least 1 item"),
    (encode(ONE_BAD), "events[1].text: String should have at most 2000 characters"),
    (encode(dict(ANA, colour="red")), "colour: Extra inputs are not permitted"),
    (encode(dict(ANA, amount=3)), "amount: not a field of type message"),
    (encode(dict(ANA, type="paid")), "amount: required for type paid"),
    (encode(dict(ANA, type="paid", amount="5")), "amount: Input should be a valid number"),
    (encode(dict(ANA, type="paid", amount=-1)), "amount: Input should be greater than"),
    (b'{"id": "a", "user": "u", "text": "t", "at": NaN}', "NaN is not a JSON number"),
    (encode({"id": "r", "type": "removal"}), "a removal needs message_id or user"),
    (encode(dict(ANA, user="u\n42")), "user: control characters are not allowed"),
    (encode(dict(ANA, platform="tik tok")), "platform: String should match pattern"),
    (encode(dict(ANA, badges=["b"] * 21)), "badges: List should have at most 20 items"),
    (encode(dict(ANA, id="x" * 201)), "id: String should have at most 200 characters"),
])
async def test_bodies_off_the_schema_get_400_naming_the_problem(
        chat: WebhookChat, client: httpx.AsyncClient, body: bytes, why: str) -> None:
    answer = await post(client, body)
    assert answer.status_code == 400, answer.text
    assert why in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert chat.pending == 0


async def test_size_type_method_and_path_are_checked(chat: WebhookChat,
                                                     client: httpx.AsyncClient) -> None:
    big = encode(dict(ANA, text="x" * 2000, badges=["y" * 60] * 20)) + b" " * 70_000
    assert (await post(client, big)).status_code == 413

    async def trickle() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
        for _ in range(100):
            yield b" " * 1000

    chunked = await client.post("/chat", content=trickle(), headers=signed(b""))
    assert chunked.status_code == 413
    body = encode(ANA)
    as_text = signed(body) | {"Content-Type": "text/plain"}
    answer = await client.post("/chat", content=body, headers=as_text)
    assert answer.status_code == 415 and "application/json" in answer.json()["error"]
    answer = await client.get("/chat")
    assert (answer.status_code, answer.headers["Allow"]) == (405, "POST")
    assert (await client.post("/chats", content=body, headers=signed(body))).status_code == 404
    assert (await client.get("/chat/health")).json() == {"pending": 0}
    assert chat.pending == 0 and chat.refused == 5


async def test_a_full_queue_answers_429_and_takes_nothing_of_a_batch(
        chat: WebhookChat, client: httpx.AsyncClient) -> None:
    first = {"events": [dict(ANA, id=f"a-{i}") for i in range(99)]}
    assert (await post(client, encode(first))).status_code == 202
    two = encode({"events": [dict(ANA, id="b-1"), dict(ANA, id="b-2")]})
    full = await post(client, two)
    assert full.status_code == 429 and full.headers["Retry-After"] == "2"
    assert chat.pending == 99
    events = chat.events()
    assert (await anext(events)).id == "a-0"  # type: ignore[union-attr]
    assert (await post(client, two)).status_code == 202  # the same batch, room for it now
    assert chat.pending == 100


async def test_neither_secret_nor_signature_is_logged(
        chat: WebhookChat, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = encode(ANA)
    good, wrong = signed(body), signed(body, secret="a-wrong-secret-0123")
    assert (await client.post("/chat", content=body, headers=good)).status_code == 202
    assert (await client.post("/chat", content=body, headers=good)).status_code == 409
    assert (await client.post("/chat", content=body, headers=wrong)).status_code == 401
    assert (await post(client, b"{")).status_code == 400
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refusals) == 3 and all("from 127.0.0.1" in line for line in refusals)
    assert "bad X-Avatarcast-Signature" in refusals[1]
    for secret in (SECRET, "a-wrong-secret-0123", good["X-Avatarcast-Signature"][7:],
                   wrong["X-Avatarcast-Signature"][7:]):
        assert secret not in caplog.text


async def test_the_documented_example_works() -> None:
    missing = [tool for tool in ("bash", "openssl", "curl", "awk") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the example needs {', '.join(missing)}, not installed here")
    example = re.search(r"## Worked example.*?```sh\n(.*?)```", DOC.read_text(), re.S)
    assert example is not None, "docs/CHAT_WEBHOOK.md has no worked example"
    script = example.group(1)
    secret = re.search(r"SECRET='([^']+)'", script)
    assert secret is not None and "http://127.0.0.1:8095/chat" in script
    chat = WebhookChat(secret.group(1), port=0)
    await chat.start()
    try:
        script = script.replace("127.0.0.1:8095", f"127.0.0.1:{chat.port}")
        run = await asyncio.create_subprocess_exec(
            "bash", "-c", script, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(run.communicate(), 10)
        assert run.returncode == 0 and json.loads(out) == {"accepted": 1}, err
        msg = await anext(chat.events())
        assert isinstance(msg, ChatMessage)
        assert (msg.platform, msg.id, msg.user, msg.display_name, msg.text) == (
            "tiktok", "tt-7311", "u-42", "Ana", "Why is the sky blue?")
    finally:
        await chat.aclose()
    batch = re.search(r"A batch.*?```json\n(.*?)```", DOC.read_text(), re.S)
    assert batch is not None
    paid, removal = parse(batch.group(1).encode(), "webhook", 0.0)
    assert isinstance(paid, ChatMessage) and paid.amount == 5.0
    assert removal == Removal("kick", message_id="k-88")


async def test_settings_are_checked_and_a_taken_port_is_a_clear_error(
        chat: WebhookChat) -> None:
    with pytest.raises(ValueError, match="at least 16 characters") as short:
        WebhookChat("too-short")
    assert "too-short" not in str(short.value)
    for bad in ({"path": "chat"}, {"platform_default": "no spaces"}, {"max_pending": 10}):
        with pytest.raises(ValueError):
            WebhookChat(SECRET, **bad)
    taken = WebhookChat(SECRET, port=chat.port)
    with pytest.raises(ChatError, match=f"cannot listen on 127.0.0.1:{chat.port}"):
        await taken.start()
    await taken.aclose()
    await taken.aclose()  # idempotent
    assert [e async for e in taken.events()] == []
