"""A chat message to its answer heard (issue 29): a local server speaking Twitch's IRC dialect
sends a viewer's question; `avatarcast chat` moderates and publishes it; the daemon (720p30,
lite, piper) airs "Name asks: ..." then the answer of a local streaming LLM server (a word
every 10 ms, as a fast hosted model); a real RTMP client decodes what nginx-rtmp relays.

  sent -> published      the chat process's decision (its chat.published event)
  sent -> first sound    the intro's first loud 10 ms at the client
  sent -> answer heard   the answer's first word at the client: the first sound plus the
                         answer's first word's offset in what aired (the daemon's transcript)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.chat_server import KEY, ChatServer
from harness.events import EventTap
from harness.irc_server import ThreadedIrc

from .air import stats
from .probes import AudioWatch
from .session import Session

ROUNDS = 10
QUESTIONS = ["Why is the sky blue?", "What is your favourite song?", "How do rainbows form?",
             "Where is the best pizza?", "Can you tell us about the moon?",
             "What are you reading these days?", "Why do cats purr?",
             "How far away is the sun?", "Who taught you to talk?", "When does the show end?"]


def _chat(work: Path, s: Session, irc: ThreadedIrc) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    env.update(s.queues.env())
    env.update({"AVATARCAST_STATE_DIR": str(work / "chat-state"), "PYTHONUNBUFFERED": "1",
                "AVATARCAST_CHAT__TWITCH__CHANNEL": "bench",
                "AVATARCAST_CHAT__TWITCH__HOST": "127.0.0.1",
                "AVATARCAST_CHAT__TWITCH__PORT": str(irc.port),
                "AVATARCAST_CHAT__TWITCH__TLS": "false", "AVATARCAST_CHAT__PER_MINUTE": "60"})
    log = (work / "chat.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "avatarcast", "chat"], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def run(work: Path) -> dict[str, Any]:
    transcript = work / "aired.jsonl"
    published, first_sound, answer_heard, missed = [], [], [], 0
    with ChatServer() as llm, ThreadedIrc() as irc, Session(work, "720p", {
        "AVATARCAST_LLM__BASE_URL": llm.base_url, "AVATARCAST_LLM__API_KEY": KEY,
        "AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript),
    }) as s, EventTap(s.queues.events) as tap:
        chat = _chat(work, s, irc)
        audio = AudioWatch(s.url)
        try:
            irc.wait_joined(0)
            time.sleep(2.0)  # the client connected and decoding
            for i in range(ROUNDS):
                s.wait_idle()
                time.sleep(0.5)
                t0 = time.time()
                irc.send(f"@display-name=Viewer{i};id=b-{i};tmi-sent-ts={int(t0 * 1000)};"
                         f"user-id={1000 + i} :v{i}!v{i}@v{i}.tmi.twitch.tv PRIVMSG #bench "
                         f":{QUESTIONS[i % len(QUESTIONS)]}")
                wire = f"chat:twitch:b-{i}"
                heard = audio.first_loud_after(t0, 30)
                entry = s.entry(wire, timeout=90)
                pub = [e for e in tap.of(wire) if e["event"] == "chat.published"]
                aired = [json.loads(x) for x in transcript.read_text().splitlines()]
                words = next((a["words"] for a in aired if a["id"] == wire), None)
                if heard is None or not pub or entry.get("aired_at") is None or not words:
                    missed += 1
                    continue
                intro_words = len(f"Viewer{i} asks: {QUESTIONS[i % len(QUESTIONS)]}".split())
                published.append(pub[0]["at"] - t0)
                first_sound.append(heard - t0)
                answer_heard.append(heard - t0 + words[intro_words][0] - words[0][0])
        finally:
            audio.close()
            chat.terminate()
            chat.wait(20)
    return {"rounds": ROUNDS, "missed": missed, "published": stats(published),
            "first_sound": stats(first_sound), "answer_heard": stats(answer_heard),
            "answer_heard_all_ms": [round(x * 1000) for x in answer_heard],
            "median_intro_s": round(statistics.median(
                [a - f for a, f in zip(answer_heard, first_sound, strict=True)]), 2)
            if answer_heard else None}


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    def ms(x: dict[str, Any]) -> str:
        return f"median {x.get('median')} ms, p95 {x.get('p95')} ms" if x.get("n") else "none"

    return [
        (f"chat message -> published by `avatarcast chat` ({f['rounds']} questions, "
         f"{f['missed']} missed)", ms(f["published"]), "", ""),
        ("chat message -> first sound at an RTMP client (\"Name asks: ...\")",
         ms(f["first_sound"]), "", ""),
        ("chat message -> the answer's first word at the client", ms(f["answer_heard"]),
         f"after the intro (median {f['median_intro_s']} s)", ""),
    ]


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="avatarcast-chat-air-") as tmp:
        return run(Path(tmp))
