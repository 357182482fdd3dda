"""`avatarcast doctor` against the real things: RabbitMQ, an nginx-rtmp server, FFmpeg, the
voices, the avatar cache; and against broken ones (a wrong password, no server on the output's
port, no FFmpeg): a clear table, exit 3, and no secret printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avatarcast.app.cli.exits import EXIT_OK, EXIT_UNAVAILABLE
from avatarcast.infra.rtmpcheck import RtmpCheckError, handshake
from harness.chat_server import KEY as CHAT_KEY
from harness.chat_server import ChatServer
from harness.daemon import QueueNames
from harness.services import NginxRtmp, free_port

pytestmark = pytest.mark.services

KEY = "doctorsecretkey42"
PASSWORD = "notthepassword99"


def doctor(tmp_path: Path, queues: QueueNames, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    base.update(queues.env())
    base.update({"AVATARCAST_STATE_DIR": str(tmp_path / "state"),
                 "AVATARCAST_SPEECH__PROVIDERS": '["piper", "espeak"]', **env})
    return subprocess.run([sys.executable, "-m", "avatarcast", "doctor"], cwd=tmp_path,
                          env=base, capture_output=True, text=True, timeout=180)


def rows(out: str) -> dict[str, tuple[str, str]]:
    lines = out.splitlines()
    at = lines[0].index("status")
    table = {}
    for line in lines[2:]:
        if not line.strip():
            break
        check, rest = line[:at].strip(), line[at:].split(None, 1)
        table[check] = (rest[0], rest[1] if len(rest) > 1 else "")
    return table


def test_doctor_on_a_working_machine(tmp_path: Path, queues: QueueNames,
                                     rtmp_server: NginxRtmp) -> None:
    with ChatServer() as chat:
        done = doctor(tmp_path, queues,
                      AVATARCAST_OUTPUT__RTMP_URLS=json.dumps([rtmp_server.url(KEY)]),
                      AVATARCAST_LLM__BASE_URL=chat.base_url, AVATARCAST_LLM__API_KEY=CHAT_KEY)
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    table = rows(done.stdout)
    for check in ("ffmpeg", "ffmpeg encoder libx264", "ffmpeg encoder aac", "broker",
                  "output 1", "voice piper", "voice espeak", "state dir"):
        assert table[check][0] == "ok", (check, table[check])
    assert "answered the handshake" in table["output 1"][1]
    assert table["llm"][0] == "ok" and CHAT_KEY not in done.stdout
    assert table["gpu"][0] in ("ok", "warn") and "all needed checks passed" in done.stdout
    assert KEY not in done.stdout + done.stderr
    # Not prepared yet: where prepare will frame the bundled portrait, and that 512 px of it
    # framed on the face is soft at 720p (a warning, not a failure).
    assert table["avatar"][0] == "warn" and "not prepared yet" in table["avatar"][1]
    assert table["avatar sharpness"] == (
        "warn", "once prepared: the face crop 422x236 of the 512x512 source is scaled up "
        "3.05x to 1280x720 and looks soft; a source of 1042x1042 or more would be sharp (at "
        "most 1.5x)")


def test_doctor_names_what_is_broken_and_exits_3(tmp_path: Path, queues: QueueNames) -> None:
    dead = f"rtmp://127.0.0.1:{free_port()}/live/{KEY}"
    done = doctor(tmp_path, queues, AVATARCAST_OUTPUT__RTMP_URLS=json.dumps([dead]),
                  AVATARCAST_BROKER__URL=f"amqp://guest:{PASSWORD}@127.0.0.1:5672/",
                  AVATARCAST_OUTPUT__FFMPEG_PATH=str(tmp_path / "no-ffmpeg"),
                  AVATARCAST_AVATAR__ID="never-prepared",
                  AVATARCAST_FACE__ANIMATOR="remote",
                  AVATARCAST_FACE__REMOTE_URL=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == EXIT_UNAVAILABLE, done.stdout + done.stderr
    table = rows(done.stdout)
    assert table["ffmpeg"][0] == "FAIL" and "not found" in table["ffmpeg"][1]
    assert table["broker"][0] == "FAIL" and "refused the login" in table["broker"][1]
    assert table["output 1"][0] == "FAIL" and "cannot connect" in table["output 1"][1]
    assert table["avatar"][0] == "FAIL" and "avatarcast prepare --id never-prepared" in \
        table["avatar"][1]
    assert table["face server"][0] == "FAIL" and "ConnectError" in table["face server"][1]
    assert "Traceback" not in done.stderr
    assert KEY not in done.stdout + done.stderr and PASSWORD not in done.stdout + done.stderr


def test_the_rtmp_check_tells_a_server_from_something_else(rtmp_server: NginxRtmp) -> None:
    assert 0 < handshake(rtmp_server.url("k")) < 5
    with pytest.raises(RtmpCheckError, match="cannot connect"):
        handshake(f"rtmp://127.0.0.1:{free_port()}/live/k", timeout_s=2)
    with pytest.raises(RtmpCheckError, match="not an rtmp"):
        handshake("http://127.0.0.1/live/k")
