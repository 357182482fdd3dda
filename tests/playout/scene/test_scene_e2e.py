"""The scene in the stream a real RTMP client received: the logo's pixels in its corner, the
AI label there by default (no [ai_label] in the scene file), the ticker moving at its speed,
the lower third in its place; changed live by control messages, each seen in the received
frame the daemon says it made it at (within a frame), a change the scene cannot make
dead-lettered with the reason; and no frame dropped with every layer on."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avatarcast.playout.scene.compose import LOWER_THIRD_BOTTOM, Compositor
from avatarcast.playout.scene.spec import SceneSettings, load_scene
from harness.daemon import QueueNames, Receiver, drain, publish
from harness.events import EventTap
from harness.services import NginxRtmp
from harness.speak import iter_frames

from .on_air import scene_daemon

W, H, FPS = 640, 360, 30
SCENE = """
[logo]
path = "logo.png"
corner = "top-left"
height = 0.15

[lower_third]
title = "Avatar Live"
subtitle = "Your questions, answered"

[ticker]
text = "Send your questions in the chat - new episodes every night"
speed = 0.2
"""


def _scene(tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp,
           ) -> tuple[dict[str, object], dict[str, int], list[str], Path]:
    """Run the daemon with the scene, change it live, speak; (its last status, the stream
    frame of each change, the reasons of the dead letters, the recording)."""
    url = rtmp_server.url("scene")
    receiver = Receiver(url, tmp_path / "received.flv", idle_timeout_s=60)
    daemon = scene_daemon(tmp_path, queues, url, animator="lite", width=W, height=H,
                          AVATARCAST_VIDEO__BITRATE_KBPS="1500")
    made: dict[str, int] = {}
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")
        daemon.wait_for(lambda s: s["frames_sent"] >= 3 * FPS, 20, "idle first")
        with EventTap(queues.events) as tap:
            for name, change in (
                ("title", {"layer": "lower_third", "title": "Breaking news"}),
                ("clock", {"layer": "clock", "visible": True}),  # not in this scene
                ("label", {"layer": "ai_label", "visible": False}),
            ):
                publish(queues.control, {"type": "control", "command": "scene", **change})
                time.sleep(1.5)
                frames = [e["stream_frame"] for e in tap.events
                          if e["event"] == "scene" and e["id"] == f"scene:{change['layer']}"]
                if frames:
                    made[name] = frames[0]
            publish(queues.speak, {"type": "speak", "id": "t0", "text": "Welcome to the show."})
            tap.wait_for(lambda ev: any(e["event"] == "finished" for e in ev), 60, "aired")
        st = daemon.wait_for(lambda s: s["state"] == "idle", 20, "idle")
        assert daemon.stop() == 0, daemon.log()
    finally:
        daemon.kill()
        receiver.finish()
    reasons = [str((m.headers or {}).get("x-avatarcast-reason")) for m in drain(queues.dead)]
    return st, made, reasons, receiver.out


@pytest.mark.services
def test_the_scene_is_in_the_received_stream_and_changes_live(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp,
) -> None:
    Image.new("RGBA", (64, 64), (255, 0, 0, 255)).save(tmp_path / "logo.png")
    (tmp_path / "scene.toml").write_text(SCENE)
    st, made, reasons, recording = _scene(tmp_path, queues, rtmp_server)
    assert st["frames_dropped"] == 0, st  # (late ticks: bench scene, not a timed test)
    assert set(made) == {"title", "label"}, made  # the clock was refused...
    assert len(reasons) == 1 and "the clock is not in this channel's scene" in reasons[0]
    # Where the daemon laid each layer: the same arithmetic, on the same settings.
    scene, base = load_scene(SceneSettings(file=tmp_path / "scene.toml"))
    c = Compositor(scene, base, W, H, FPS)
    (logo, lx, ly), (label, ax, ay) = c._fixed["logo"], c._fixed["ai_label"]
    lower, ticker = c._look.lower, c._look.ticker
    assert lower is not None and ticker is not None
    rgb = [f.astype(np.int16) for f in iter_frames(recording, W, H, pix_fmt="rgb24",
                                                   channels=3)]
    assert len(rgb) > made["label"] + FPS
    lw, lh = logo.size
    aw, ah = label.size
    tw, th = lower.size
    bottom = round(H * LOWER_THIRD_BOTTOM) // 2 * 2

    unlabelled = rgb[-1][ay:ay + ah, ax:ax + aw]  # (hidden by then)

    def labelled(f: np.ndarray) -> bool:
        """The AI label's box and letters where the backdrop is, once the label is hidden."""
        return bool(np.abs(f[ay:ay + ah, ax:ax + aw] - unlabelled).mean() > 12)

    for f in rgb[FPS:made["title"]:10]:
        inner = f[ly + 3:ly + lh - 3, lx + 3:lx + lw - 3]
        assert (inner[..., 0] > 200).all() and (inner[..., 1:] < 60).all()  # red
        assert labelled(f)
        lt = f[bottom - th + 4:bottom - 4, c._m + 8:c._m + tw - 8]
        blue = (lt[..., 2] > lt[..., 0] + 25) & (lt[..., 2] < 170)
        assert blue.mean() > 0.5
    # Each change is in the frame the daemon made it at, or the next (the encoder's).
    def lower_third(f: np.ndarray) -> np.ndarray:
        return f[bottom - th:bottom, c._m:c._m + 2 * tw].mean(axis=2)

    before = lower_third(rgb[made["title"] - 5])
    changed = [k for k in range(made["title"] - 4, made["title"] + 5)
               if np.abs(lower_third(rgb[k]) - before).mean() > 5]
    assert changed and abs(changed[0] - made["title"]) <= 1, (changed, made)
    gone = [k for k in range(made["label"] - 4, made["label"] + 5) if not labelled(rgb[k])]
    assert gone and abs(gone[0] - made["label"]) <= 1, (gone, made)
    assert not any(labelled(f) for f in rgb[made["label"] + 2::10])
    # The ticker: its band moves 0.2 picture widths a second, 4.27 px a frame.
    band = [f[H - ticker.size[1] // 2, :].mean(axis=1) for f in rgb[FPS:4 * FPS]]
    shifts = []
    for a, b in itertools.pairwise(band):
        errors = [np.abs(b[:W - 32] - a[s:W - 32 + s]).mean() for s in range(16)]
        shifts.append(int(np.argmin(errors)))
    speed = float(np.mean(shifts)) * FPS / W
    assert 0.18 <= speed <= 0.22, (speed, shifts)
