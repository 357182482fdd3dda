"""First sound on air for `ask`: from publishing the question to the answer's first frame
going to the encoder, against a local streaming chat server (harness/chat_server.py, a word
every 10 ms, like a fast hosted model) at 720p30 with the lite animator; beside it, the same
first sentence published as a plain `speak`. The difference is what waiting for the model's
first sentence costs. Then the same server as a model that thinks between sentences (each
sentence at once, the next 2 s later, as a loaded or local model): publish -> first frame, and
publish -> the server beginning its last sentence (the answer is not complete before).

  python -m bench ask        (about 4 minutes)
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

from . import report
from .session import Session

ROUNDS = 10
THINKING_S = 2.0


def _p95(xs: list[float]) -> float:
    return round(float(np.percentile(xs, 95)) * 1000, 1)


def run(work: Path) -> dict[str, Any]:
    first_sentence = ANSWER.split(". ")[0] + "."
    ask_s: list[float] = []
    speak_s: list[float] = []
    thinking_s: list[float] = []
    last_begun_s: list[float] = []
    with ChatServer() as server, Session(work, "720p", {
        "AVATARCAST_LLM__BASE_URL": server.base_url, "AVATARCAST_LLM__API_KEY": KEY,
    }) as s:
        for i in range(ROUNDS):
            for kind, into in (("ask", ask_s), ("speak", speak_s), ("thinking", thinking_s)):
                msg_id = f"{kind}-{i}"
                body: dict[str, Any] = ({"type": "speak", "id": msg_id, "text": first_sentence}
                                        if kind == "speak" else
                                        {"type": "ask", "id": msg_id, "prompt": "Rainbows?"})
                s.wait_idle()
                server.sentence_gap_s = THINKING_S if kind == "thinking" else 0.0
                server.sentence_starts = []
                t = time.time()
                publish(s.queues.speak, body)
                entry = s.entry(msg_id, timeout=60)
                if entry.get("aired_at") is None:
                    raise RuntimeError(f"{msg_id} did not air: {entry}")
                into.append(entry["aired_at"] - t)
                if kind == "thinking":  # (settled: the whole answer was sent)
                    last_begun_s.append(server.sentence_starts[-1] - t)
    return {
        "rounds": ROUNDS,
        "ask_ms": {"median": round(statistics.median(ask_s) * 1000, 1), "p95": _p95(ask_s)},
        "speak_ms": {"median": round(statistics.median(speak_s) * 1000, 1),
                     "p95": _p95(speak_s)},
        "thinking_ms": {"median": round(statistics.median(thinking_s) * 1000, 1),
                        "p95": _p95(thinking_s)},
        "thinking_last_begun_ms": {"median": round(statistics.median(last_begun_s) * 1000, 1),
                                   "p95": _p95(last_begun_s)},
        "thinking_s": THINKING_S,
        "ask_all_ms": [round(x * 1000, 1) for x in ask_s],
        "thinking_all_ms": [round(x * 1000, 1) for x in thinking_s],
        "speak_all_ms": [round(x * 1000, 1) for x in speak_s],
    }


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    a, s = f["ask_ms"], f["speak_ms"]
    out: list[tuple[str, ...]] = [
        (f"ask: publish -> first frame on air ({f['rounds']} asks)",
         f"median {a['median']} ms, p95 {a['p95']} ms", "", ""),
        ("speak of the same first sentence", f"median {s['median']} ms, p95 {s['p95']} ms",
         "", ""),
    ]
    if "thinking_ms" in f:
        t, last = f["thinking_ms"], f["thinking_last_begun_ms"]
        out += [
            (f"ask, a model thinking {f['thinking_s']:g} s between sentences: publish -> "
             "first frame on air", f"median {t['median']} ms, p95 {t['p95']} ms",
             "before the answer is complete",
             report.verdict(t["p95"] < last["median"])),
            ("  publish -> the model begins its last sentence",
             f"median {last['median']} ms, p95 {last['p95']} ms", "", ""),
        ]
    return out


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(f["ask_all_ms"], "o-", label="ask")
    ax.plot(f.get("thinking_all_ms", []), "o-", label="ask, a model thinking between sentences")
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
