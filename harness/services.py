"""Real services for the tests: RabbitMQ (started if not running) and nginx-rtmp on a free port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5) -> None:
    """Terminate, and kill what does not exit within `timeout`."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, timeout=120, capture_output=True)


def ensure_rabbitmq() -> None:
    if port_open(5672):
        return
    if shutil.which("rabbitmq-server") is None:
        raise RuntimeError("RabbitMQ is not installed (apt-get install rabbitmq-server)")
    subprocess.run(["rabbitmq-server", "-detached"], check=False)
    subprocess.run(
        ["sh", "-c", "until rabbitmqctl -q await_startup --timeout 30; do sleep 0.5; done"],
        timeout=120, check=True,
    )
    wait_port(5672, 60)


class NginxRtmp:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = (ROOT / "deploy" / "nginx-rtmp.conf.in").read_text()
        conf = conf.replace("@PREFIX@", str(self.dir)).replace("@LISTEN@",
                                                                f"127.0.0.1:{self.port}")
        (self.dir / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_port(self.port, 10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
