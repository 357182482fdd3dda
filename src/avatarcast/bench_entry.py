"""The `avatarcast-bench` command. The benchmarks drive the daemon through the same harness
as the end-to-end tests, so they run from a source checkout (bench/ and tests/ beside src/)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "cli.py").is_file() or not (root / "tests").is_dir():
        sys.exit("avatarcast-bench: run it from a source checkout of avatarcast (it needs "
                 f"bench/ and tests/ beside src/; not found under {root})")
    sys.path.insert(0, str(root))
    importlib.import_module("bench.cli").main()
