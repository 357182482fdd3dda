"""Piper's memory goes back after each sentence: a long text leaves the process no bigger than
a short one did (the ONNX arena is shrunk after every run; kept whole it held +220 MB here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = r"""
import asyncio, sys
from pathlib import Path
from avatarcast.infra.malloc import return_big_blocks_to_the_os
from avatarcast.speech.piper import PiperSynthesizer

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

SENTENCE = ("The committee met on Tuesday to discuss the budget, the schedule, the staffing "
            "plan and the new building, and after a long debate about every line of it they "
            "agreed to meet again next week, when the figures would be ready for everyone. ")

async def main():
    return_big_blocks_to_the_os()  # as the daemon runs
    piper = PiperSynthesizer(None, Path(sys.argv[1]), Path(sys.argv[2]))
    await piper.load()
    for text in ("Hello, I am live.", "Hello, I am live."):
        [c async for c in piper.synthesize(text, None)]
    short = rss_mib()
    [c async for c in piper.synthesize(SENTENCE * 3, None)]
    print(short, rss_mib())
    await piper.aclose()

asyncio.run(main())
"""


def test_a_long_text_leaves_no_memory_behind(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "voices"),
                          str(tmp_path / "cache")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    short, after = map(float, out.stdout.split())
    assert after - short < 60, f"{after - short:.0f} MiB held after a long text"
