"""The headline figures in one table, each beside its earlier values: the run when issue 17 was
filed (the baseline), the run before the latest, and the latest, all read from
bench/results/*.json (nothing is measured here). Kept in docs/BENCHMARKS.md between the
`summary` markers; every bench run refreshes it, and `python -m bench summary` alone does too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import capacity
from .report import DOC, ROOT

RESULTS = ROOT / "bench" / "results"
# Issue 17's figures as it was filed: the quick run it quotes (Xeon, 2 cores).
BASELINE = {"quick": "20261121T090332"}

Figures = dict[str, Any]


def _ms(s: dict[str, Any] | None) -> str | None:
    if not s or not s.get("n"):
        return None
    return f"median {s['median']:.0f}, p95 {s['p95']:.0f} ms (n={s['n']})"


def _s(s: dict[str, Any] | None) -> str | None:
    if not s or not s.get("n"):
        return None
    return f"median {s['median']:.2f}, p95 {s['p95']:.2f} s (n={s['n']})"


def _dropped(f: Figures) -> str | None:
    whole = f.get("cadence", {}).get("whole")
    if not whole or "frames_expected" not in whole:
        return None
    return f"{whole['frames_dropped']} of {whole['frames_expected']}"


def _drift(f: Figures) -> str | None:
    whole = f.get("cadence", {}).get("whole") or {}
    return f"{whole['av_drift_ms']:+.0f} ms" if "av_drift_ms" in whole else None


def _carried(f: Figures) -> str | None:
    if "channels_carried" not in f:
        return None
    return f"{capacity.carried(f)} ({capacity.conditions(f)})"


def _get(*path: str) -> Callable[[Figures], Any]:
    def pick(f: Figures) -> Any:
        for key in path:
            f = f.get(key) if isinstance(f, dict) else None  # type: ignore[assignment]
        return f

    return pick


# (kind, figure, value from a run's figures, target)
ROWS: list[tuple[str, str, Callable[[Figures], str | None], str]] = [
    ("capacity", "720p30 channels on this machine, 0 dropped", _carried, "as many as it can"),
    ("fleet", "owner killed -> video at a client again",
     lambda f: _s(f.get("killed_to_video_at_client_s")), "a few seconds"),
    ("quick", "publish -> first speech at the client",
     lambda f: _ms(_get("time_to_air", "first_speech")(f)), "p50 <= 300 ms"),
    ("quick", "interrupt -> last old speech at the client",
     lambda f: _ms(_get("interrupt", "interrupt_to_last_old_speech")(f)), "p95 <= 100 ms"),
    ("quick", "skip -> last speech at the client",
     lambda f: _ms(_get("skip", "skip_to_last_speech")(f)), "p95 <= 100 ms"),
    ("quick", "interrupt -> first new speech at the client",
     lambda f: _ms(_get("interrupt", "interrupt_to_first_new_speech")(f)), ""),
    ("quick", "frames dropped (whole quick run)", _dropped, "0"),
    ("quick", "A/V drift at the end", _drift, "within a frame (33 ms)"),
]


def _runs(kind: str) -> list[tuple[str, Figures, str]]:
    """(stamp, figures, cpu) of every stored run of a kind, oldest first."""
    out = []
    for path in sorted(RESULTS.glob(f"*-{kind}.json")):
        record = json.loads(path.read_text())
        out.append((record["stamp"], record["figures"], record["machine"]["cpu"]))
    return out


def _cell(run: tuple[str, Figures, str] | None, pick: Callable[[Figures], str | None]) -> str:
    if run is None:
        return ""
    value = pick(run[1])
    cpu = " ".join(w for w in run[2].replace("(R)", "").split()[:2])
    return f"{value} [{run[0]}, {cpu}]" if value is not None else ""


def table() -> str:
    head = ("figure", "when issue 17 was filed", "previous run", "latest run", "target")
    rows = []
    for kind, label, pick, target in ROWS:
        runs = [r for r in _runs(kind) if pick(r[1]) is not None]
        base = next((r for r in runs if r[0] == BASELINE.get(kind)), None)
        latest = runs[-1] if runs else None
        previous = runs[-2] if len(runs) > 1 and runs[-2] is not base else None
        rows.append((label, _cell(base, pick) or "(not measured)", _cell(previous, pick),
                     _cell(latest, pick), target))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])


def update(doc: Path = DOC) -> str:
    """The table, kept in the doc between its markers (where the doc has them)."""
    text = table()
    if doc.is_file():
        block = (f"<!-- summary:begin -->\nEach cell names its run (`bench/results/<run>-<kind>"
                 f".json`) and the CPU it ran on (2 cores each).\n\n{text}\n"
                 f"<!-- summary:end -->")
        pattern = re.compile(r"<!-- summary:begin -->.*?<!-- summary:end -->", re.S)
        old = doc.read_text()
        if pattern.search(old):
            doc.write_text(pattern.sub(lambda _: block, old))
    return text
