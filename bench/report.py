"""A run's record: bench/results/<timestamp>.json (machine, versions, settings, every figure),
a PNG chart beside it, a printed table, and that table kept in docs/BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"


def _run(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
            "kernel": platform.release()}


def versions() -> dict[str, Any]:
    import numpy

    out: dict[str, Any] = {
        "python": sys.version.split()[0], "numpy": numpy.__version__,
        "ffmpeg": (_run("ffmpeg", "-version").splitlines() or ["?"])[0],
        "commit": _run("git", "rev-parse", "--short", "HEAD"),
        "dirty": bool(_run("git", "status", "--porcelain", "--untracked-files=no")),
    }
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = f"{v:.3g}" if abs(v) < 10 else f"{v:.0f}"
    return f"{v}{unit}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def write(kind: str, stamp: str, record: dict[str, Any], rows: list[tuple[str, ...]],
          out_dir: Path, chart: Any) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stamp}-{kind}.json"
    path.write_text(json.dumps(record, indent=1, default=str))
    png = path.with_suffix(".png")
    chart(record, png)
    table = markdown(rows)
    print(f"\navatarcast benchmark ({kind}), {stamp}, commit {record['versions']['commit']}")
    print(table)
    print(f"\n{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\n{png}")
    keep_in_doc(kind, stamp, record, table, png)
    return path


def markdown(rows: list[tuple[str, ...]]) -> str:
    head = ("figure", "measured", "target", "verdict")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])


def keep_in_doc(kind: str, stamp: str, record: dict[str, Any], table: str, png: Path) -> None:
    if not DOC.is_file():
        return
    m = record["machine"]
    block = (f"<!-- {kind}:begin -->\n"
             f"Run {stamp}, commit `{record['versions']['commit']}`"
             f"{' (uncommitted changes)' if record['versions']['dirty'] else ''}, "
             f"{m['cpu']}, {m['cores']} cores; chart: `bench/results/{png.name}`.\n\n"
             f"{table}\n<!-- {kind}:end -->")
    text = DOC.read_text()
    pattern = re.compile(rf"<!-- {kind}:begin -->.*?<!-- {kind}:end -->", re.S)
    if pattern.search(text):
        DOC.write_text(pattern.sub(lambda _: block, text))
