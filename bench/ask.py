"""First sound on air for `ask`: from publishing the question to the answer's first frame
going to the encoder, against a local streaming chat server (harness/chat_server.py, a word
every 10 ms, like a fast hosted model) at 720p30 with the lite animator; beside it, the same
first sentence published as a plain `speak`. The difference is what waiting for the model's
first sentence costs.

  python -m bench ask        (about 2 minutes)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.chat_server import ANSWER, KEY, ChatServer
from harness.daemon import publish

from .session import Session

ROUNDS = 10


def _p95(xs: list[float]) -> float:
    return round(float(np.percentile(xs, 95)) * 1000, 1)


def run(work: Path) -> dict[str, Any]:
    first_sentence = ANSWER.split(". ")[0] + "."
    ask_s: list[float] = []
    speak_s: list[float] = []
    with ChatServer() as server, Session(work, "720p", {
        "AVATARCAST_LLM__BASE_URL": server.base_url, "AVATARCAST_LLM__API_KEY": KEY,
    }) as s:
        for i in range(ROUNDS):
            for kind, into in (("ask", ask_s), ("speak", speak_s)):
                msg_id = f"{kind}-{i}"
                body: dict[str, Any] = ({"type": "ask", "id": msg_id, "prompt": "Rainbows?"}
                                        if kind == "ask" else
                                        {"type": "speak", "id": msg_id, "text": first_sentence})
                s.wait_idle()
                t = time.time()
                publish(s.queues.speak, body)
                entry = s.entry(msg_id, timeout=60)
                if entry.get("aired_at") is None:
                    raise RuntimeError(f"{msg_id} did not air: {entry}")
                into.append(entry["aired_at"] - t)
    return {
        "rounds": ROUNDS,
        "ask_ms": {"median": round(statistics.median(ask_s) * 1000, 1), "p95": _p95(ask_s)},
        "speak_ms": {"median": round(statistics.median(speak_s) * 1000, 1),
                     "p95": _p95(speak_s)},
        "ask_all_ms": [round(x * 1000, 1) for x in ask_s],
        "speak_all_ms": [round(x * 1000, 1) for x in speak_s],
    }


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    a, s = f["ask_ms"], f["speak_ms"]
    return [
        (f"ask: publish -> first frame on air ({f['rounds']} asks)",
         f"median {a['median']} ms, p95 {a['p95']} ms", "", ""),
        ("speak of the same first sentence", f"median {s['median']} ms, p95 {s['p95']} ms",
         "", ""),
    ]


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(f["ask_all_ms"], "o-", label="ask")
    ax.plot(f["speak_all_ms"], "o-", label="speak (same first sentence)")
    ax.set(xlabel="round", ylabel="publish -> first frame on air, ms",
           title=f"avatarcast ask, {record['stamp']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="avatarcast-ask-") as tmp:
        return run(Path(tmp))
