"""Memory does not grow with the length of a text: the longest accepted text at 1080p, rendered
by the real daemon, keeps its resident memory within idle + 300 MiB while it airs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.daemon import LONGEST_TEXT, DaemonProc, QueueNames, publish

pytestmark = pytest.mark.services



def test_longest_text_at_1080p_keeps_memory_bounded(tmp_path: Path, queues: QueueNames) -> None:
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_VIDEO__WIDTH": "1920",
        "AVATARCAST_VIDEO__HEIGHT": "1080",
        "AVATARCAST_VIDEO__BITRATE_KBPS": "2000",
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")
        time.sleep(3)
        idle = daemon.rss_mib()
        publish(queues.speak, {"type": "speak", "id": "longest", "text": LONGEST_TEXT})
        daemon.wait_for(lambda s: s["on_air"] == "longest", 90, "on air")
        peak = idle
        deadline = time.monotonic() + 40  # the old renderer ran minutes ahead in this time
        while time.monotonic() < deadline:
            peak = max(peak, daemon.rss_mib())
            time.sleep(0.25)
        st = daemon.status()
        assert st is not None and st["on_air"] == "longest"  # still talking, not cut
        publish(queues.control, {"type": "control", "command": "skip"})
        daemon.wait_for(lambda s: daemon.outcomes(s).get("longest") == "skipped", 30, "skip")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    print(f"resident memory: idle {idle:.0f} MiB, peak {peak:.0f} MiB (+{peak - idle:.0f})")
    assert peak - idle < 300, f"idle {idle:.0f} MiB, peak {peak:.0f} MiB"
