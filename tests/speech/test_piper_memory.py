"""Piper's memory goes back after each sentence: a long text leaves the process no bigger than
a short one did (the ONNX arena is shrunk after every run; kept whole it held +220 MB here).

The voice draws random noise in the model (two RandomNormalLike nodes: the durations, so every
size in the run), and what stays mapped after a long text depends on that draw, not on what
else ran: measured in a fresh process each time, 3 of 16 seeds (0, 2, 10) kept about +228 MiB
(large mmapped blocks, gone after the next synthesis), the others +2-3 MiB, the same for a
seed every time. Unseeded, the test failed now and then; each case here fixes its draw with
onnxruntime.set_seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
    import onnxruntime
    onnxruntime.set_seed(int(sys.argv[3]))  # the model's random draws, before it is loaded
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


@pytest.mark.parametrize("seed", [
    1,
    pytest.param(0, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
        "bug: with this draw of the voice's noise a long text leaves about +228 MiB resident "
        "(large mmapped blocks, likely the ONNX arena) until the next synthesis; found with "
        "this test, not fixed yet"))),
])
def test_a_long_text_leaves_no_memory_behind(tmp_path: Path, seed: int) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "voices"),
                          str(tmp_path / "cache"), str(seed)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    short, after = map(float, out.stdout.split())
    assert after - short < 60, f"{after - short:.0f} MiB held after a long text"
