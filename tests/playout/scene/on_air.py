"""The daemon as the scene's end-to-end tests run it: one RTMP output (the test's nginx-rtmp),
a small picture, no motion, and the scene file in the test's folder."""

from __future__ import annotations

import json
from pathlib import Path

from harness.daemon import DaemonProc, QueueNames


def scene_daemon(tmp_path: Path, queues: QueueNames, url: str, *, animator: str, width: int,
                 height: int, **extra: str) -> DaemonProc:
    return DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([url]),
        "AVATARCAST_FACE__ANIMATOR": animator, "AVATARCAST_ALIVE__ENABLED": "off",
        "AVATARCAST_VIDEO__WIDTH": str(width), "AVATARCAST_VIDEO__HEIGHT": str(height),
        "AVATARCAST_SCENE__FILE": str(tmp_path / "scene.toml"), **extra})
