"""A replaced background in the stream a real RTMP client received: with `[background]` a key
colour, the bundled portrait's flag, wall and shuttle are gone and the key colour is behind the
person in every frame, idle and speaking (the lite animator's mouth and the motion stay inside
the person), and the face in the middle is still the face; no frame dropped. A looping video
plays behind the moving person at the stream's rate; switched live, a bad one changes
nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.daemon import DaemonProc, QueueNames, Receiver, drain, publish
from harness.events import EventTap
from harness.services import NginxRtmp
from harness.speak import iter_frames

from .on_air import scene_daemon

W, H, FPS = 640, 360, 30
KEY = np.array([0, 177, 64])


def keyed(rgb: np.ndarray) -> np.ndarray:
    """Where a received frame shows the key colour (after yuv420p and H.264)."""
    return np.abs(rgb.astype(int) - KEY).max(axis=2) < 40


@contextlib.contextmanager
def _on_air(tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp, scene: str,
            **env: str) -> Iterator[tuple[DaemonProc, Receiver]]:
    """The daemon with `scene` as its scene file, on air at a real RTMP client, ready and 2 s
    into its idle; killed (if it did not stop) and the recording finished after."""
    (tmp_path / "scene.toml").write_text(scene)
    url = rtmp_server.url(tmp_path.name[:40])
    receiver = Receiver(url, tmp_path / "received.flv", idle_timeout_s=60)
    daemon = scene_daemon(tmp_path, queues, url, animator="lite", width=W, height=H, **env)
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 120, "ready")
        daemon.wait_for(lambda s: s["frames_sent"] >= 2 * FPS, 20, "idle first")
        yield daemon, receiver
    finally:
        daemon.kill()
        receiver.finish()


def _aired(tap: EventTap, queues: QueueNames, text: str) -> tuple[int, int]:
    """`text` spoken: the stream frames of its first and last frame on air."""
    publish(queues.speak, {"type": "speak", "id": "t0", "text": text})
    tap.wait_for(lambda ev: any(e["event"] == "finished" for e in ev), 60, "aired")
    on, off = (next(e["stream_frame"] for e in tap.events if e["event"] == what)
               for what in ("on_air", "finished"))
    return on, off


@pytest.mark.services
def test_the_background_is_replaced_in_every_frame_idle_and_speaking(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp,
) -> None:
    with _on_air(tmp_path, queues, rtmp_server, '[background]\ncolor = "#00b140"\n',
                 AVATARCAST_ALIVE__ENABLED="on") as (daemon, receiver), \
            EventTap(queues.events) as tap:
        on, off = _aired(tap, queues, "Hello, and welcome to the show from the studio.")
        time.sleep(1.0)
        st = daemon.status()
        assert st is not None and daemon.stop() == 0, daemon.log()
    assert st["frames_dropped"] == 0, st
    shares, centre = {}, {}
    for n, rgb in enumerate(iter_frames(receiver.out, W, H, pix_fmt="rgb24", channels=3)):
        if n % 10 == 0 and n >= FPS:
            k = keyed(rgb)
            shares[n] = float(k.mean())
            centre[n] = float(k[int(H * 0.3):int(H * 0.6), int(W * 0.4):int(W * 0.6)].mean())
    speaking = [n for n in shares if on + 5 <= n <= off - 5]
    assert len(shares) > 5 and len(speaking) >= 3, (shares, on, off)
    idle = [shares[n] for n in shares if n < on]
    # Behind the person: the key colour over a large part of every frame, as much speaking as
    # at rest (nothing drawn over it), and none of it over the face in the middle.
    assert min(shares.values()) > 0.25, shares
    assert max(abs(shares[n] - np.median(idle)) for n in speaking) < 0.03, shares
    assert max(centre.values()) < 0.02, centre


MAGENTA = np.array([255, 0, 255])


@pytest.mark.services
def test_the_background_switches_live_and_a_bad_one_changes_nothing(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp,
) -> None:
    def control(**change: object) -> None:
        publish(queues.control, {"type": "control", "command": "scene",
                                 "layer": "background", **change})

    with _on_air(tmp_path, queues, rtmp_server, '[background]\ncolor = "#00b140"\n') as (
            daemon, receiver), EventTap(queues.events) as tap:
        control(image="../outside.png")
        control(image="missing.png")
        control(color="#ff00ff")
        switched = tap.wait_for(lambda ev: any(e["event"] == "scene" for e in ev), 60,
                                "switched")
        magenta = next(e["stream_frame"] for e in switched if e["event"] == "scene")
        on, off = _aired(tap, queues, "The studio has a new colour tonight.")
        control(visible=False)
        tap.wait_for(lambda ev: sum(e["event"] == "scene" for e in ev) == 2, 60, "hidden")
        hidden = [e["stream_frame"] for e in tap.events if e["event"] == "scene"][1]
        time.sleep(1.5)
        st = daemon.status()
        assert st is not None and daemon.stop() == 0, daemon.log()
    reasons = [str((m.headers or {}).get("x-avatarcast-reason")) for m in drain(queues.dead)]
    assert len(reasons) == 2 and "outside the scene's folder" in reasons[0], reasons
    assert "no such file" in reasons[1], reasons
    assert st["frames_dropped"] == 0 and st["scene"]["background"] is None, st
    green, pink = {}, {}
    for n, rgb in enumerate(iter_frames(receiver.out, W, H, pix_fmt="rgb24", channels=3)):
        green[n] = float(keyed(rgb).mean())
        pink[n] = float((np.abs(rgb.astype(int) - MAGENTA).max(axis=2) < 40).mean())
    print({n: (round(green[n], 2), round(pink[n], 2)) for n in range(0, len(green), 15)})
    # Green (the refused changes changed nothing) until the switch, a frame or two after its
    # event (nothing on air); magenta from then on, speaking too; the portrait's own background
    # once hidden (asked just after the text, it waits for the rest after a segment: 0.4 s).
    to_pink = next(n for n in pink if pink[n] > 0.25)
    to_own = next(n for n in pink if n > to_pink and pink[n] < 0.01)
    print(f"switched at frame {magenta}, seen at {to_pink}; hidden at {hidden}, seen at {to_own}")
    assert magenta - 2 <= to_pink <= magenta + FPS // 2 and hidden - 2 <= to_own <= hidden + FPS
    assert min(green[n] for n in range(FPS, to_pink)) > 0.25
    assert min(pink[n] for n in range(to_pink, to_own)) > 0.25
    assert max(green[n] for n in range(to_pink, to_own)) < 0.01
    assert on + 5 > to_pink and off - 5 < to_own  # the text, over it too
    assert max(green[n] + pink[n] for n in range(to_own, len(pink))) < 0.02


def _loop_video(path: Path, colors: list[np.ndarray], each: int) -> None:
    """A video of `each` frames of each colour in turn (H.264, as a user would give it)."""
    frames = b"".join(np.full((90, 160, 3), c, np.uint8).tobytes() * each for c in colors)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", "160x90", "-r", str(FPS), "-i", "-", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-crf", "12", str(path)],
                   input=frames, check=True)


@pytest.mark.services
def test_a_looping_video_plays_behind_the_moving_person(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp,
) -> None:
    each = 15  # frames of green, then of magenta: a loop of a second
    _loop_video(tmp_path / "loop.mp4", [KEY, MAGENTA], each)
    (tmp_path / "bad.mp4").write_text("not a video")
    with _on_air(tmp_path, queues, rtmp_server, '[background]\nvideo = "loop.mp4"\n',
                 AVATARCAST_ALIVE__ENABLED="on") as (daemon, receiver), \
            EventTap(queues.events) as tap:
        publish(queues.control, {"type": "control", "command": "scene",
                                 "layer": "background", "video": "bad.mp4"})
        on, off = _aired(tap, queues, "Behind me the studio changes colour every half a "
                                      "second, and I keep talking.")
        # The decoder killed: restarted, the stream going on meanwhile.
        decoder = subprocess.run(["pgrep", "-P", str(daemon.proc.pid), "-f", "stream_loop"],
                                 capture_output=True, text=True, check=True).stdout.split()
        assert len(decoder) == 1, decoder
        killed = daemon.status()["frames_sent"]
        os.kill(int(decoder[0]), signal.SIGKILL)
        back = daemon.wait_for(lambda s: s["scene"]["video"]["restarts"] == 1
                               and s["scene"]["video"]["failed"] is None, 20, "restarted")
        daemon.wait_for(lambda s: s["frames_sent"] >= back["frames_sent"] + 3 * FPS, 20, "more")
        st = daemon.status()
        assert st is not None and daemon.stop() == 0, daemon.log()
    reasons = [str((m.headers or {}).get("x-avatarcast-reason")) for m in drain(queues.dead)]
    assert len(reasons) == 1 and "bad.mp4" in reasons[0], reasons
    assert st["frames_dropped"] == 0 and st["scene"]["background"] == "loop.mp4", st
    assert st["scene"]["video"]["failed"] is None, st["scene"]
    green, pink, centre = {}, {}, []
    for n, rgb in enumerate(iter_frames(receiver.out, W, H, pix_fmt="rgb24", channels=3)):
        if n < FPS:
            continue
        g, p = keyed(rgb), np.abs(rgb.astype(int) - MAGENTA).max(axis=2) < 40
        green[n], pink[n] = float(g.mean()), float(p.mean())
        middle = (slice(int(H * 0.3), int(H * 0.6)), slice(int(W * 0.4), int(W * 0.6)))
        centre.append(float(g[middle].mean() + p[middle].mean()))
    # Behind the person in every frame, idle, speaking and while the decoder was down (its
    # last frame held): one colour of the video or the other (none of the portrait's own
    # background), never over the face in the middle.
    assert min(green[n] + pink[n] for n in green) > 0.25
    assert max(centre) < 0.02, max(centre)
    # It plays at the stream's rate: the colour turns every `each` frames, all along, before
    # the decoder was killed and once it was back.
    for first, last, what in ((FPS, killed, "before"), (back["frames_sent"] + FPS // 2,
                                                        max(green), "after")):
        which = [green[n] > pink[n] for n in range(first, last)]
        turns = [i for i in range(1, len(which)) if which[i] != which[i - 1]]
        runs = np.diff(turns)
        print(f"{what}: {len(turns)} turns, runs {np.median(runs)} median, "
              f"{runs.min()}-{runs.max()}")
        assert len(turns) >= (last - first) // each - 2, (what, turns)
        assert abs(np.median(runs) - each) <= 1 and each - 3 <= runs.min(), runs
        assert runs.max() <= each + 3, runs
    assert killed - FPS > off - on  # the text was among the frames checked before
