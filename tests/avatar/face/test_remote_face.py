"""The remote animator and `avatarcast serve-face`: the wire format, a daemon whose faces a
face server renders (on this machine, with the lite animator, marking every frame it renders),
and the services that fail it: nothing listening, a server that stalls, a server with a
different avatar under the id. The stream never waits: the lite animator takes over, and the
message airs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from avatarcast.avatar import mesh
from avatarcast.avatar.face.lite import LiteAnimator
from avatarcast.avatar.face.mouthtrack import MouthTrack
from avatarcast.avatar.face.remote_wire import apply_patch, encode_patch, parse_body, request_body
from avatarcast.avatar.face.server import FaceServer
from avatarcast.avatar.runtime import Avatar
from avatarcast.media.audio import Pcm
from avatarcast.media.frames import Frame
from avatarcast.settings import Settings
from harness.daemon import DaemonProc, QueueNames, publish
from harness.services import free_port, stop_process, wait_port
from harness.speak import decode_frames
from harness.threadserver import ThreadedApp

from ...faces import PORTRAIT

TEXT = "Good evening from the face server, and welcome to the show."


def test_patches_rebuild_the_frame_exactly() -> None:
    rng = np.random.default_rng(1)
    idle = rng.integers(0, 255, (360 * 3 // 2, 640), np.uint8)
    frame = idle.copy()
    frame[101:150, 203:260] = 7  # luma
    frame[360 + 10 : 360 + 20, 30:50] = 9  # some chroma
    data = encode_patch(3, frame, idle)
    from avatarcast.avatar.face.remote_wire import HEADER

    index, x, y, w, h = HEADER.unpack(data[: HEADER.size])
    assert index == 3 and w * h < 640 * 360 // 4 and x % 2 == y % 2 == 0
    assert np.array_equal(apply_patch(idle, x, y, w, h, data[HEADER.size :]), frame)
    same = encode_patch(0, idle, idle)
    assert len(same) == HEADER.size
    with pytest.raises(ValueError, match="needs"):
        apply_patch(idle, 0, 0, 4, 4, b"short")


def test_requests_round_trip_and_bad_ones_say_why() -> None:
    n = 5
    mouth = MouthTrack(np.linspace(0, 1, n, dtype=np.float32), np.zeros(n, np.float32),
                       np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.int8))
    audio = (np.arange(n * 533) % 200).astype(np.int16)
    body = json.loads(json.dumps(request_body("a", "sha", 640, 360, 30, [0] * n, audio, mouth)))
    cycle, got_audio, got = parse_body(body)
    assert cycle == [0] * n and np.array_equal(got_audio, audio)
    assert np.allclose(got.jaw, mouth.jaw, atol=1e-4)
    body["mouth"]["jaw"] = [0.1]
    with pytest.raises(ValueError, match="one value per frame"):
        parse_body(body)


def _serve_face(tmp_path: Path, avatars: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    env.update({"AVATARCAST_AVATAR__AVATARS_DIR": str(avatars),
                "AVATARCAST_FACE__ANIMATOR": "lite"})
    log = (tmp_path / f"serve-face-{port}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "avatarcast", "serve-face", "--port",
                             str(port)], env=env, cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT)
    wait_port(port, 30)
    return proc


def _speak_with(tmp_path: Path, queues: QueueNames, url: str, avatars: Path
                ) -> tuple[DaemonProc, dict[str, Any]]:
    daemon = DaemonProc(tmp_path / "d", queues, {
        "AVATARCAST_FACE__ANIMATOR": "remote", "AVATARCAST_FACE__REMOTE_URL": url,
        "AVATARCAST_FACE__REMOTE_TIMEOUT_S": "1.5",
        "AVATARCAST_AVATAR__AVATARS_DIR": str(avatars),
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 90, "ready")
        publish(queues.speak, {"type": "speak", "id": "r-1", "text": TEXT})
        st = daemon.wait_for(lambda s: daemon.outcomes(s) == {"r-1": "aired"}, 90, "aired")
        assert st["frames_dropped"] == 0
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    return daemon, st


class _Marking:
    """The face server's lite animator, marking every frame it renders with a block of pure
    green on the chin (a colour no animator of the daemon draws there) and counting them."""

    name = "lite"

    def __init__(self, fps: int) -> None:
        self._lite = LiteAnimator(fps)
        self.rendered = 0
        self.box = (0, 0, 0, 0)  # x0, y0, x1, y1 in output pixels, all even

    def load(self, avatar: Avatar) -> None:
        self._lite.load(avatar)
        assert avatar.faces is not None
        lm = avatar.faces.landmarks[0]
        x, y = lm[mesh.CHIN, 0], (lm[17, 1] + 2 * lm[mesh.CHIN, 1]) / 3  # 17: lower lip
        x0, y0 = int(x) // 2 * 2 - 4, int(y) // 2 * 2 - 2
        self.box = (x0, y0, x0 + 8, y0 + 4)

    def render(self, audio_16k: Pcm, cycle_indices: list[int], mouth: MouthTrack
               ) -> Any:
        for batch in self._lite.render(audio_16k, cycle_indices, mouth):
            # (A frame at rest is the idle frame itself: marked on a copy.)
            marked = [_stamp(frame.copy(), self.box) for frame in batch]
            self.rendered += len(marked)
            yield marked

    async def aclose(self) -> None:
        await self._lite.aclose()


def _stamp(frame: Frame, box: tuple[int, int, int, int]) -> Frame:
    rows, w = frame.shape
    h = rows * 2 // 3
    x0, y0, x1, y1 = box
    frame[y0:y1, x0:x1] = 150
    chroma = frame.reshape(-1)[h * w :].reshape(2, h // 2, w // 2)
    chroma[0, y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = 44  # U, V: pure green
    chroma[1, y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = 21
    return frame


class _MarkingFaceServer(ThreadedApp):
    """`avatarcast serve-face`'s own server, on a thread here, its animator marking."""

    def __init__(self, avatars: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.port = free_port()
        self.animators: list[_Marking] = []

        def make(name: str, settings: Any, fps: int) -> _Marking:
            self.animators.append(_Marking(fps))
            return self.animators[-1]

        monkeypatch.setattr("avatarcast.avatar.face.server.make_animator", make)
        self._server = FaceServer(Settings(_env_file=None, avatar={"avatars_dir": avatars},
                                           face={"animator": "lite"}))

    def routes(self, app: web.Application) -> None:
        for route in self._server.app().router.routes():
            app.router.add_route(route.method, route.resource.canonical,  # type: ignore[union-attr]
                                 route.handler)


@pytest.mark.services
def test_a_face_server_renders_the_daemons_faces(
    tmp_path: Path, queues: QueueNames, monkeypatch: pytest.MonkeyPatch,
) -> None:
    avatars = tmp_path / "avatars"
    with _MarkingFaceServer(avatars, monkeypatch) as server:
        daemon, st = _speak_with(tmp_path, queues, f"http://127.0.0.1:{server.port}", avatars)
    assert "face animator: remote" in daemon.log()
    (animator,) = server.animators
    (entry,) = st["recent"]
    first, last = entry["stream_first"], entry["stream_last"]
    path = tmp_path / "d" / "program.mkv"
    rgb = decode_frames(path, 320, 240, "rgb24", 3)
    # Every frame of the speech on air came from the face server: its mark is on each, and
    # on no idle frame around them (the encoder may carry a trace into the next frame); and
    # the server rendered as many frames as aired (none twice, none for nothing).
    x0, y0, x1, y1 = animator.box
    block = rgb[:, y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].astype(np.int16).mean(axis=(1, 2))
    green = block[:, 1] - (block[:, 0] + block[:, 2]) / 2
    idle = np.r_[green[: first - 1], green[last + 3 :]]
    print(f"\nmark: speaking min {green[first : last + 1].min():.0f}, idle max "
          f"{idle.max():.0f}")
    assert (green[first : last + 1] > 60).all(), green[first - 2 : last + 3].round()
    assert first > 30 and (idle < 0).all()
    assert animator.rendered == last - first + 1
    # The mouth moved in what was recorded (the face server's frames, pasted here), and only
    # while the speech was on air.
    from avatarcast.avatar.track import FaceTracker

    lm = FaceTracker().find(np.ascontiguousarray(rgb[first - 3]))
    assert lm is not None
    lips = lm[list(mesh.OUTER_UPPER + mesh.OUTER_LOWER), :2]
    (lx0, ly0), (lx1, ly1) = lips.min(0).astype(int) - 3, lips.max(0).astype(int) + 6
    ly1 = min(ly1, y0)  # above the mark
    luma = decode_frames(path, 320, 240, "gray", 1)[..., 0].astype(np.int16)
    box = luma[:, ly0:ly1, lx0:lx1]
    change = np.abs(box - box[first - 3]).mean(axis=(1, 2))
    speaking, before = change[first : last + 1], change[first - 12 : first - 3]
    print(f"lips change: speaking median {np.median(speaking):.2f}, before max "
          f"{before.max():.2f}")
    assert np.mean(speaking > before.max() + 2.0) > 0.3


@pytest.mark.services
def test_a_dead_face_server_leaves_it_to_lite(tmp_path: Path, queues: QueueNames) -> None:
    daemon, _ = _speak_with(tmp_path, queues, f"http://127.0.0.1:{free_port()}",
                            tmp_path / "avatars")
    assert "remote face:" in daemon.log() and "ConnectError" in daemon.log()
    assert "the lite animator renders frames 0.." in daemon.log()


@pytest.mark.services
def test_a_stalling_face_server_leaves_it_to_lite(tmp_path: Path, queues: QueueNames) -> None:
    class Stall(ThreadedApp):
        port = free_port()

        def routes(self, app: web.Application) -> None:
            app.router.add_post("/v1/render", self.stall)

        async def stall(self, request: web.Request) -> web.Response:
            await request.read()
            await asyncio.sleep(60)
            return web.Response()

    with Stall() as server:
        daemon, _ = _speak_with(tmp_path, queues, f"http://127.0.0.1:{server.port}",
                                tmp_path / "avatars")
    assert "ReadTimeout" in daemon.log()


@pytest.mark.services
def test_a_face_server_with_another_avatar_under_the_id_is_refused(
    tmp_path: Path, queues: QueueNames,
) -> None:
    import cv2

    from avatarcast.avatar.cache import BuildSettings
    from avatarcast.avatar.loader import auto_id
    from avatarcast.avatar.prepare import build
    from avatarcast.settings import AvatarSettings

    other = tmp_path / "other.png"
    cv2.imwrite(str(other), cv2.flip(cv2.imread(str(PORTRAIT)), 1))
    server_avatars, port = tmp_path / "server-avatars", free_port()
    build(other, auto_id(AvatarSettings()), server_avatars, BuildSettings(30, 600, 1920))
    server = _serve_face(tmp_path, server_avatars, port)
    try:
        daemon, _ = _speak_with(tmp_path, queues, f"http://127.0.0.1:{port}",
                                tmp_path / "avatars")
    finally:
        stop_process(server)
    assert "HTTP 409" in daemon.log() and "different source" in daemon.log()
