"""Per-message avatars and switching the defaults at run time, against a real daemon: a
message that names an avatar airs with it and the stream goes back to its own; `set` changes
the default avatar, animator and voice without restarting the stream; what cannot be had is
dead-lettered with the reason and changes nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from avatarcast.avatar.cache import BuildSettings
from avatarcast.avatar.prepare import build
from avatarcast.settings import DEFAULT_IDLE_SOURCE
from harness.daemon import DaemonProc, QueueNames, drain, publish
from harness.events import EventTap
from harness.speak import decode_frames

pytestmark = pytest.mark.services
W, H, FPS = 320, 240, 30


def _prepare(workdir: Path) -> Path:
    """Two avatars: the portrait ("anchor") and a guest, the portrait mirrored and tinted
    (a picture that no frame of the anchor's resembles)."""
    avatars = workdir / "avatars"
    guest = cv2.imread(str(DEFAULT_IDLE_SOURCE))[:, ::-1]
    guest = cv2.add(guest, np.full_like(guest, (60, 0, 0)))  # BGR: bluer
    cv2.imwrite(str(workdir / "guest.png"), guest)
    # Framed for the daemon's output (4:3): a prepared avatar framed for another aspect
    # must be prepared again before a message may name it.
    settings = BuildSettings(fps=FPS, max_frames=600, max_side=1920, aspect=W / H)
    build(DEFAULT_IDLE_SOURCE, "anchor", avatars, settings)
    build(workdir / "guest.png", "guest", avatars, settings)
    return avatars


def _settled(daemon: DaemonProc, msg_id: str) -> dict[str, Any]:
    st = daemon.wait_for(lambda s: any(r["id"] == msg_id for r in s["recent"]), 60,
                         f"{msg_id} settled")
    return next(r for r in st["recent"] if r["id"] == msg_id)


def _dead_reason(q: QueueNames, count: int) -> list[str]:
    reasons: list[str] = []
    for _ in range(100):
        reasons += [str((m.headers or {}).get("x-avatarcast-reason")) for m in drain(q.dead)]
        if len(reasons) >= count:
            return reasons
        time.sleep(0.1)
    raise AssertionError(f"dead letters: {reasons}")


def test_per_message_avatar_and_run_time_switches(tmp_path: Path, queues: QueueNames) -> None:
    avatars = _prepare(tmp_path)
    rec = tmp_path / "program.mkv"
    daemon = DaemonProc(tmp_path, queues, {
        # Which picture airs, pixel for pixel, and whether the still animator moves it: the
        # face's own motion is off here (tests/avatar/alive covers it).
        "AVATARCAST_ALIVE__ENABLED": "off",
        "AVATARCAST_AVATAR__AVATARS_DIR": str(avatars),
        "AVATARCAST_AVATAR__ID": "anchor",
        "AVATARCAST_FACE__ANIMATOR": "lite",
        "AVATARCAST_OUTPUT__RECORD_PATH": str(rec),
        "AVATARCAST_VIDEO__WIDTH": str(W), "AVATARCAST_VIDEO__HEIGHT": str(H),
    })
    settled: dict[str, dict[str, Any]] = {}
    try:
        with EventTap(queues.events) as tap:
            daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
            # A message with its own avatar; then one with an avatar nobody prepared.
            publish(queues.speak, {"type": "speak", "id": "g1", "avatar": "guest",
                                   "text": "Hello, I am the guest tonight."})
            settled["g1"] = _settled(daemon, "g1")
            publish(queues.speak, {"type": "speak", "id": "x1", "avatar": "nobody",
                                   "text": "Nobody prepared me."})
            settled["x1"] = _settled(daemon, "x1")
            (reason,) = _dead_reason(queues, 1)
            assert "avatar 'nobody' is not prepared" in reason, reason
            tap.wait_for(lambda evs: any(e["event"] == "failed" for e in evs), 10, "x1 failed")
            (failed,) = [e for e in tap.of("x1") if e["event"] == "failed"]
            assert "not prepared" in failed["reason"]
            daemon.wait_for(lambda s: s["state"] == "idle", 10, "back to idle")
            time.sleep(1.5)  # past the gap after the guest's message (playout.gap_ms, 400)
            mark_anchor = daemon.status()["frames_sent"]  # type: ignore[index]

            # The guest becomes the default: no restart, the next message speaks as the guest.
            publish(queues.control, {"type": "control", "command": "set", "avatar": "guest"})
            st = daemon.wait_for(lambda s: s["avatar"] == "guest", 20, "guest is the default")
            mark_guest = st["frames_sent"]
            publish(queues.speak, {"type": "speak", "id": "d1", "text": "Now I stay."})
            settled["d1"] = _settled(daemon, "d1")

            # What cannot be had changes nothing and is dead-lettered with the reason.
            publish(queues.control, {"type": "control", "command": "set", "avatar": "nobody"})
            publish(queues.control, {"type": "control", "command": "set",
                                     "voice": "no-such-voice"})
            reasons = _dead_reason(queues, 2)
            assert any("set: avatar 'nobody' is not prepared" in r for r in reasons), reasons
            assert any("set: voice 'no-such-voice' cannot speak" in r for r in reasons), reasons
            st = daemon.status()
            assert st is not None and st["avatar"] == "guest" and st["voice"] is None

            # Back to the configured avatar, with the still animator: the mouth stays shut.
            publish(queues.control, {"type": "control", "command": "set", "avatar": None,
                                     "animator": "still"})
            st = daemon.wait_for(lambda s: s["animator"] == "still" and s["avatar"] == "anchor",
                                 20, "anchor with the still animator")
            mark_back = st["frames_sent"]
            publish(queues.speak, {"type": "speak", "id": "s1", "text": "My lips stay still."})
            settled["s1"] = _settled(daemon, "s1")
            st = daemon.status()
            assert st is not None
            assert st["encoder_restarts"] == 0 and st["frames_dropped"] == 0
    finally:
        assert daemon.stop() == 0, daemon.log()[-3000:]

    assert {k: v["outcome"] for k, v in settled.items()} == {
        "g1": "aired", "x1": "failed", "d1": "aired", "s1": "aired"}
    rgb = decode_frames(rec, W, H, "rgb24", 3).astype(np.int16)
    luma = decode_frames(rec, W, H, "gray", 1)[..., 0].astype(np.int16)
    anchor_ref = np.median(rgb[mark_anchor - 15 : mark_anchor - 5], axis=0)
    guest_ref = np.median(rgb[mark_guest + 10 : mark_guest + 20], axis=0)
    assert np.abs(anchor_ref - guest_ref).mean() > 20  # two pictures nobody confuses

    def who(k: int) -> str:
        a = np.abs(rgb[k] - anchor_ref).mean()
        g = np.abs(rgb[k] - guest_ref).mean()
        return "anchor" if a < g else "guest"

    g1, d1, s1 = settled["g1"], settled["d1"], settled["s1"]
    # The guest's message is the guest from its first frame to its last (a cut, no blend of
    # two faces), and the anchor is on before it and again once the queue is empty.
    assert [who(k) for k in range(g1["stream_first"] - 3, g1["stream_first"])] == ["anchor"] * 3
    assert {who(k) for k in range(g1["stream_first"], g1["stream_last"] + 1)} == {"guest"}
    for k in range(g1["stream_first"], g1["stream_last"] + 1):
        assert np.abs(rgb[k] - guest_ref).mean() < 8, k  # not a blend with the anchor
    assert who(mark_anchor - 1) == "anchor"
    # After the switch, idle and speech are the guest's, until the switch back.
    assert {who(k) for k in range(mark_guest + 5, d1["stream_last"] + 1)} == {"guest"}
    # Switched back while d1's gap ran: the guest until the gap is over, then the anchor,
    # and no flicker between them.
    after = [who(k) for k in range(mark_back, len(rgb))]
    turn = after.index("anchor")
    assert set(after[turn:]) == {"anchor"} and turn < 30, after
    assert mark_back + turn <= s1["stream_first"]

    # The still animator: the speech airs (s1 aired) and the picture does not move with it.
    def moved(reference: np.ndarray, first: int, last: int) -> int:
        """The most pixels any frame of the span changed by more than 20 levels."""
        return max(int((np.abs(luma[k] - reference) > 20).sum()) for k in range(first, last))

    # (After a cut to another picture the encoder takes some ten frames to converge on it.)
    still = moved(luma[mark_anchor - 10], s1["stream_first"] + 12, s1["stream_last"] + 1)
    # While the lite animator's guest spoke, the mouth did move.
    lite = moved(luma[mark_guest + 10], g1["stream_first"] + 12, g1["stream_last"] - 5)
    print(f"pixels moved while speaking: still {still}, lite {lite}")
    assert still < 10 and lite > 40, (still, lite)
