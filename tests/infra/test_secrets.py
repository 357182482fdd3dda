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
from aiohttp import web

from harness.daemon import DaemonProc, QueueNames, drain, publish, write_channels
from harness.openai_server import Request, SpeechServer
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


# A channel's own secrets, set only in the channels file of a worker.
CHANNEL_KEY, CHANNEL_API_KEY = "chan-Kq27-never-shown", "sk-chan-Wd55-never-shown"


class EchoingSpeechServer(SpeechServer):
    """An OpenAI-compatible server that refuses the key, quoting it whole in its error."""

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        self.requests.append(Request(time.time(), await request.json(), auth))
        return self._error(401, f"Incorrect API key provided: {auth.removeprefix('Bearer ')}.")


def test_a_channels_secrets_and_an_echoed_key_never_show(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    """In a worker, each channel's stream key and API key are as secret as the worker's own;
    a provider that echoes the key in its refusal does not put it in the dead letter."""
    with EchoingSpeechServer(key=CHANNEL_API_KEY) as server:
        write_channels(tmp_path / "channels.toml", {"a": rtmp_server.url(CHANNEL_KEY)}, {
            "a": f'speech.providers = ["openai"]\nspeech.openai_base_url = "{server.base_url}"\n'
                 f'speech.openai_api_key = "{CHANNEL_API_KEY}"\n'})
        daemon = DaemonProc(tmp_path / "w", queues, {
            "AVATARCAST_CHANNELS_FILE": str(tmp_path / "channels.toml"),
            "AVATARCAST_OUTPUT__RTMP_URLS": "[]",
        })
        qa = queues.channel("a")
        try:
            daemon.wait_for(lambda s: s["channels"]["a"].get("broker_connected", False), 60,
                            "channel a up")
            publish(qa.speak, {"type": "speak", "id": "echo", "text": "Say my key."})
            st = daemon.wait_for(lambda s: any(r["id"] == "echo" for r in s["channels"]["a"][
                "recent"]), 60, "echo settled")
            health = json.dumps(st)
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    assert server.requests and all(r.auth == f"Bearer {CHANNEL_API_KEY}" for r in server.requests)
    (dead,) = drain(qa.dead)
    reason = str((dead.headers or {}).get("x-avatarcast-reason"))
    assert "Incorrect API key provided" in reason, reason  # the refusal, quoted
    log = daemon.log()
    assert "Incorrect API key provided" in log
    for secret in (CHANNEL_KEY, CHANNEL_API_KEY):
        assert secret not in reason
        assert secret not in log, secret
        assert secret not in health
