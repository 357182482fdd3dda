"""`avatarcast chat` between local servers speaking Twitch's IRC dialect and YouTube's
liveChatMessages (and a relay posting to its signed webhook) and a real daemon on the real
RabbitMQ, answering with a local LLM server: the chosen questions go on air named and quoted,
then answered; paid messages are thanked first; the blocked ones and a badly signed post are
never aired; every decision is counted on /metrics; a chat process restarted on chats that say
their messages again publishes nothing twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from harness.asr import heard
from harness.chat_server import KEY, ChatServer
from harness.daemon import DaemonProc, QueueNames, Receiver, queue_depth
from harness.events import EventTap
from harness.irc_server import ThreadedIrc
from harness.services import NginxRtmp, free_port
from harness.youtube_server import KEY as YT_KEY
from harness.youtube_server import VIDEO_ID, YouTubeServer, author, super_chat, text_message

TOKEN = "chat-token-abcdefghijkl0123"
ANSWER = "Rainbows are sunlight. Raindrops bend it."  # (short: five answers air)
ASK = ("@badges=subscriber/6;display-name=Ana_B;id=q-1;tmi-sent-ts={ts};user-id=4242 "
       ":ana!ana@ana.tmi.twitch.tv PRIVMSG #show :Why is the sky blue?")
BITS = ("@badges=;bits=100;display-name=Bo;id=q-2;tmi-sent-ts={ts};user-id=7 "
        ":bo!bo@bo.tmi.twitch.tv PRIVMSG #show :cheer100 Do you like music?")
BLOCKED = ("@badges=;display-name=Cy;id=q-3;tmi-sent-ts={ts};user-id=9 "
           ":cy!cy@cy.tmi.twitch.tv PRIVMSG #show :is this a s c a m or what?")


SECRET = "relay-secret-0123456789abcdef"
HOOK = {"id": "tt-1", "platform": "tiktok", "user": "dee", "display_name": "Dee",
        "text": "Can you say hello to Lisbon?"}
FORGED = {"id": "tt-2", "platform": "tiktok", "user": "eve", "text": "What is the password?"}


def _page(yt: YouTubeServer) -> None:
    """A page of YouTube chat: a Super Chat, a question, a blocked message."""
    now = datetime.now(UTC).isoformat()
    yt.serve(text_message("yt-1", "What's your name?", by=author("UCfay", "Fay"), at=now),
             super_chat("yt-2", 5_000_000, "USD", "Greetings from Porto!",
                        by=author("UCgil", "Gil"), at=now),
             text_message("yt-3", "SCAM alert", by=author("UChal", "Hal"), at=now))


def _line(template: str) -> str:
    return template.format(ts=int(time.time() * 1000))


def _post(port: int, event: dict[str, str], secret: str = SECRET) -> int:
    """Posted as a relay does (docs/CHAT_WEBHOOK.md): the status."""
    body, ts = json.dumps(event).encode(), str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    deadline = time.monotonic() + 20
    while True:  # (until the chat process listens)
        try:
            return httpx.post(f"http://127.0.0.1:{port}/chat", content=body, timeout=5, headers={
                "Content-Type": "application/json", "X-Avatarcast-Timestamp": ts,
                "X-Avatarcast-Signature": f"sha256={sig}"}).status_code
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _chat(workdir: Path, queues: QueueNames, irc: ThreadedIrc, yt: YouTubeServer, hook: int,
          metrics: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    env.update(queues.env())
    env.update({
        "AVATARCAST_STATE_DIR": str(workdir / "state"),
        "AVATARCAST_CHAT__TWITCH__CHANNEL": "show", "AVATARCAST_CHAT__TWITCH__NICK": "hostbot",
        "AVATARCAST_CHAT__TWITCH__TOKEN": TOKEN, "AVATARCAST_CHAT__TWITCH__HOST": "127.0.0.1",
        "AVATARCAST_CHAT__TWITCH__PORT": str(irc.port), "AVATARCAST_CHAT__TWITCH__TLS": "false",
        "AVATARCAST_CHAT__BLOCKLIST": '["scam"]', "PYTHONUNBUFFERED": "1",
        "AVATARCAST_CHAT__WEBHOOK__SECRET": SECRET, "AVATARCAST_CHAT__WEBHOOK__PORT": str(hook),
        "AVATARCAST_CHAT__METRICS_PORT": str(metrics),
        "AVATARCAST_CHAT__YOUTUBE__VIDEO_ID": VIDEO_ID, "AVATARCAST_CHAT__YOUTUBE__API_KEY": YT_KEY,
        "AVATARCAST_CHAT__YOUTUBE__BASE_URL": yt.base_url,
        "AVATARCAST_CHAT__YOUTUBE__DAILY_QUOTA": "10000000",  # a read every 43 ms at most
    })
    log = (workdir / "chat.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "avatarcast", "chat"], cwd=workdir, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.services
def test_chat_questions_go_on_air_named_and_answered_and_blocked_ones_never(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp,
) -> None:
    transcript = tmp_path / "aired.jsonl"
    url = rtmp_server.url("chat")
    receiver = Receiver(url, tmp_path / "received.flv", idle_timeout_s=60)
    with ChatServer(answer=ANSWER) as llm, ThreadedIrc(token=TOKEN) as irc, \
            YouTubeServer() as yt:
        daemon = DaemonProc(tmp_path / "d", queues, {
            "AVATARCAST_LLM__BASE_URL": llm.base_url, "AVATARCAST_LLM__API_KEY": KEY,
            "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url]),
            "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript)})
        hook, metrics = free_port(), free_port()
        chat = _chat(tmp_path, queues, irc, yt, hook, metrics)
        try:
            daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
            irc.wait_joined(0)
            with EventTap(queues.events) as tap:
                for template in (BLOCKED, ASK, BITS):
                    irc.send(_line(template))
                assert _post(hook, FORGED, secret="not-the-relay-secret-000") == 401
                tap.wait_for(lambda ev: sum(e["event"] == "finished" for e in ev) >= 2, 120,
                             "both answered")
                assert _post(hook, HOOK) == 202
                tap.wait_for(lambda ev: sum(e["event"] == "finished" for e in ev) >= 3, 120,
                             "the relay's question answered")
                _page(yt)
                tap.wait_for(lambda ev: sum(e["event"] == "finished" for e in ev) >= 5, 120,
                             "the YouTube chat answered")
                published = [e["chat_id"] for e in tap.events if e["event"] == "chat.published"]
                dropped = [(e["chat_id"], e["reason"]) for e in tap.events
                           if e["event"] == "chat.dropped"]
            assert published == ["q-2", "q-1", "tt-1", "yt-2", "yt-1"]
            assert dropped == [("q-3", "blocked word"), ("yt-3", "blocked word")]
            assert all(r.auth == "key header" for r in yt.requests)
            scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).text
            for line in ('avatarcast_chat_messages_total{decision="published",platform="twitch"'
                         ',reason=""} 2.0', 'avatarcast_chat_messages_total{decision="dropped",'
                         'platform="twitch",reason="blocked word"} 1.0',
                         'avatarcast_chat_messages_total{decision="published",platform="tiktok"'
                         ',reason=""} 1.0', 'avatarcast_chat_source_up{platform="webhook"} 1.0',
                         'avatarcast_chat_messages_total{decision="published",platform="youtube"'
                         ',reason=""} 2.0'):
                assert line in scraped, scraped
            # Stopped and started again; the chat says the question again (same id).
            chat.send_signal(signal.SIGTERM)
            assert chat.wait(20) == 0
            chat = _chat(tmp_path, queues, irc, yt, hook, metrics)
            irc.wait_joined(1)
            with EventTap(queues.events) as tap:
                irc.send(_line(ASK))
                assert _post(hook, HOOK) == 202  # the relay sent it again
                _page(yt)  # read from the start again: YouTube's recent messages
                deadline = time.monotonic() + 20
                while yt.script and time.monotonic() < deadline:  # (until it read the page)
                    time.sleep(0.1)
                time.sleep(3)
                assert not yt.script and not [e for e in tap.events
                                              if e["event"].startswith("chat.")]
            assert queue_depth(queues.speak) == 0
            assert daemon.stop() == 0
            receiver.finish()
        finally:
            daemon.kill()
            chat.kill()
            chat.wait()
            receiver.wait()
    aired = [json.loads(x) for x in transcript.read_text().splitlines()]
    said = {e["id"]: " ".join(w[2] for w in e["words"]) for e in aired}
    assert said == {
        "chat:twitch:q-2": f"Thank you, Bo, for the 100 bits! Bo asks: Do you like music? {ANSWER}",
        "chat:twitch:q-1": f"Ana B asks: Why is the sky blue? {ANSWER}",
        "chat:tiktok:tt-1": f"Dee asks: Can you say hello to Lisbon? {ANSWER}",
        "chat:youtube:yt-2": "Thank you, Gil, for the 5 dollars! Gil says: Greetings from "
                             f"Porto! {ANSWER}",
        "chat:youtube:yt-1": f"Fay asks: What's your name? {ANSWER}",
    }
    # Heard by a recognizer on what the client received: each question read out, not the
    # blocked ones.
    words = heard(tmp_path / "received.flv")
    text = " ".join(words)
    # (a word or two of each: the recognizer mishears some of piper's words, not these)
    for said_on_air in ("hundred", "music", "sky", "blue", "dollars", "name"):
        assert said_on_air in words, text
    # Each answer once, none twice (the transcript above says each aired once); the
    # recognizer may mishear one of the five (CI on 2026-12-04 heard "brain bowser").
    assert 4 <= words.count("rainbows") <= 5, text
    assert "scam" not in words and "password" not in words, text
    for unaired in ("s c a m", "password", "SCAM"):
        assert unaired not in json.dumps(llm.requests)  # nor was the LLM asked it
    # The viewer's words reached the model quoted, under the fixed instructions.
    asked = [r["messages"] for r in llm.requests]
    assert [m[-1]["content"].split("Message: ")[1] for m in asked] == [
        "Do you like music?\n</chat>", "Why is the sky blue?\n</chat>",
        "Can you say hello to Lisbon?\n</chat>", "Greetings from Porto!\n</chat>",
        "What's your name?\n</chat>"]
    assert all(m[0]["role"] == "system" and "quoted data" in m[0]["content"] for m in asked)
    log = (tmp_path / "chat.log").read_text()
    assert TOKEN not in log and SECRET not in log and YT_KEY not in log
