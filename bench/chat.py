"""The chat moderator under a flood (issue 29): 100 000 messages, every one from a new viewer
and one in ten a near copy of a recent one, through `Moderator.check`: messages handled a
second (median and p95 over batches of 1 000), and the memory it holds (tracemalloc) after
10 000 and after 100 000 messages, which must not grow with the flood. Then a chat message to
its answer heard at an RTMP client (chat_air.py).

  python -m bench chat       (about three minutes)
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from avatarcast.app.chat.message import ChatMessage
from avatarcast.app.chat.moderation import Moderator

from . import chat_air

FLOOD = 100_000
BATCH = 1_000
TOPICS = ["the moon", "your favourite song", "the weather in Lisbon", "how you were made",
          "the best pizza", "learning to code", "cats or dogs", "the stream tonight"]


def _message(i: int) -> ChatMessage:
    if i % 10 == 9:  # a near copy of the one before
        text = f"Hey, what do you think about {TOPICS[(i - 1) % 8]}? asked {i - 1} times"
    else:
        text = f"Hey, what do you think about {TOPICS[i % 8]}? asked {i} times"
    return ChatMessage(platform="twitch", id=f"m{i}", user=f"viewer{i}",
                       display_name=f"Viewer {i}", text=text, at=float(i))


def measure() -> dict[str, Any]:
    return {**moderator(), "air": chat_air.measure()}


def moderator() -> dict[str, Any]:
    mod = Moderator(blocklist=["scam", "buy followers"])
    rates: list[float] = []
    reasons: Counter[str] = Counter()
    tracemalloc.start()
    held: dict[int, int] = {}
    for start in range(0, FLOOD, BATCH):
        batch = [_message(i) for i in range(start, start + BATCH)]
        t = time.perf_counter()
        for m in batch:
            reasons[mod.check(m) or "passed"] += 1
        rates.append(BATCH / (time.perf_counter() - t))
        if start + BATCH in (10_000, FLOOD):
            held[start + BATCH] = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    s = sorted(rates)
    return {"messages": FLOOD, "per_s_median": round(statistics.median(s)),
            "per_s_p5": round(s[len(s) // 20]),
            "held_mib_at_10k": round(held[10_000] / 2**20, 2),
            "held_mib_at_100k": round(held[FLOOD] / 2**20, 2),
            "outcomes": dict(reasons), "per_s_all": [round(r) for r in rates],
            "note": "rates measured under tracemalloc (slower)"}


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        ("messages moderated a second (new viewer each, 1 in 10 a near copy)",
         f"median {f['per_s_median']}, slowest 5% {f['per_s_p5']} (under tracemalloc)",
         "far above a busy chat (~100/s)", ""),
        ("memory held by the moderator after 10 000 / 100 000 messages",
         f"{f['held_mib_at_10k']} / {f['held_mib_at_100k']} MiB", "bounded",
         "met" if f["held_mib_at_100k"] <= f["held_mib_at_10k"] * 1.2 + 0.5 else "missed"),
        ("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(f["outcomes"].items())), "", ""),
        *(chat_air.rows(f["air"]) if "air" in f else []),
    ]


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([BATCH * (k + 1) for k in range(len(f["per_s_all"]))], f["per_s_all"])
    ax.set(xlabel="messages so far", ylabel="messages moderated a second", ylim=(0, None),
           title=f"avatarcast chat moderator, {record['stamp']}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
