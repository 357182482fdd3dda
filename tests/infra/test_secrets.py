"""The broker password and the stream key appear nowhere an operator or another user looks:
the daemon's log (errors included), /healthz, dead-letter reasons, and the command lines of
every process but FFmpeg's (FFmpeg 5.1 takes the output URL from argv only; the README says
how to hide it from other users)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.daemon import DaemonProc, QueueNames, drain, publish
from harness.services import NginxRtmp

pytestmark = pytest.mark.services

USER, PASSWORD = "avatarcast-secret-test", "pw-Zq81-never-shown"
KEY = "key-Xv93-never-shown"


@pytest.fixture
def broker_user(rabbitmq: None) -> Iterator[str]:
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_user", USER, PASSWORD], capture_output=True, timeout=60)
    subprocess.run([*ctl, "change_password", USER, PASSWORD], check=True,
                   capture_output=True, timeout=60)
    subprocess.run([*ctl, "set_permissions", "-p", "/", USER, ".*", ".*", ".*"], check=True,
                   capture_output=True, timeout=60)
    yield f"amqp://{USER}:{PASSWORD}@127.0.0.1:5672/"
    subprocess.run([*ctl, "delete_user", USER], capture_output=True, timeout=60)


def cmdlines() -> dict[int, str]:
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace")
            except OSError:
                continue
    return found


def test_secrets_never_show(tmp_path: Path, queues: QueueNames, broker_user: str,
                            rtmp_server: NginxRtmp) -> None:
    daemon = DaemonProc(tmp_path, queues, {
        "AVATARCAST_BROKER__URL": broker_user,
        "AVATARCAST_OUTPUT__RTMP_URLS": json.dumps([rtmp_server.url(KEY)]),
        "AVATARCAST_OUTPUT__RESTART_BACKOFF_MIN_S": "0.2",
    })
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        publish(queues.speak, b'{"type": "speak", "id": "bad", "text": 7}', "bad")
        publish(queues.speak, {"type": "speak", "id": "ok", "text": "Secrets stay secret."})
        daemon.wait_for(lambda s: daemon.outcomes(s).get("ok") == "aired", 60, "aired")
        # Errors that name the URLs: the RTMP server goes away, the broker drops us.
        rtmp_server.stop()
        daemon.wait_for(lambda s: s["encoder_restarts"] >= 2, 30, "encoder failing")
        rtmp_server.start()
        subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "test"],
                       capture_output=True, timeout=60)
        daemon.wait_for(lambda s: s["encoder_alive"] and s["broker_connected"], 30, "back")
        time.sleep(1)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{daemon.health_port}/healthz", timeout=5
        ) as r:
            health = r.read().decode()
        procs = cmdlines()
        ffmpeg_pids = {int(p) for p in subprocess.run(
            ["pgrep", "-P", str(daemon.proc.pid)], capture_output=True, text=True
        ).stdout.split()}
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    dead = drain(queues.dead)
    reasons = " ".join(str((m.headers or {}).get("x-avatarcast-reason")) for m in dead)
    log = daemon.log()
    assert "Connection refused" in log or "refused" in log.lower()  # the errors were logged
    for secret in (PASSWORD, KEY):
        assert secret not in log
        assert secret not in health
        assert secret not in reasons
        for pid, line in procs.items():
            if pid in ffmpeg_pids and secret == KEY:
                continue  # FFmpeg's own argv: see the module docstring
            assert secret not in line, f"process {pid}: {line[:200]}"
    assert any(KEY in procs.get(pid, "") for pid in ffmpeg_pids)  # the exception is real
