"""Real services for the tests: RabbitMQ (started if not running) and nginx-rtmp on a free port,
optionally watched from the server's side (who publishes, as nginx-rtmp sees it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .threadserver import ThreadedApp

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


@dataclass(frozen=True)
class Notice:
    """One of nginx-rtmp's notifications: a client started (`publish`) or stopped
    (`publish_done`) publishing a stream."""

    call: str
    name: str  # the stream's name (its key)
    client: str  # nginx's id of the client's connection
    args: dict[str, str]  # the query of the URL the client published to
    at: float  # time.monotonic() when the server told


@dataclass
class _Notices(ThreadedApp):
    """The HTTP end of nginx-rtmp's on_publish / on_publish_done: records each, allows all."""

    port: int = field(default_factory=free_port)
    notices: list[Notice] = field(default_factory=list)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/notify", self._notify)

    async def _notify(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        known = ("call", "name", "clientid", "app", "flashver", "swfurl", "tcurl", "pageurl",
                 "addr", "type")
        self.notices.append(Notice(form["call"], form["name"], form["clientid"],
                                   {k: v for k, v in form.items() if k not in known},
                                   time.monotonic()))
        return web.Response(text="ok")


class NginxRtmp:
    def __init__(self, workdir: Path, watch: bool = False) -> None:
        """`watch`: also record every publish (`notices`) and serve nginx-rtmp's statistics
        (`publishers`), so a test sees from the server's side who publishes a stream."""
        self.dir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._notices = _Notices() if watch else None
        self._stat_port = free_port()

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = (ROOT / "deploy" / "nginx-rtmp.conf.in").read_text()
        conf = conf.replace("@PREFIX@", str(self.dir)).replace("@LISTEN@",
                                                                f"127.0.0.1:{self.port}")
        if self._notices is not None:
            self._notices.__enter__()
            conf = self._watched(conf, self._notices.port)
        (self.dir / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_port(self.port, 10)
        if self._notices is not None:
            wait_port(self._stat_port, 10)

    def _watched(self, conf: str, notify_port: int) -> str:
        notify = f"http://127.0.0.1:{notify_port}/notify"
        assert conf.count("live on;") == 1, "the application block moved in the template"
        conf = conf.replace("live on;", f"live on;\n            on_publish {notify};\n"
                                        f"            on_publish_done {notify};")
        temp = " ".join(f"{k}_temp_path {self.dir / k};"
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return conf + (f"http {{ access_log off; {temp}\n"
                       f"  server {{ listen 127.0.0.1:{self._stat_port};\n"
                       f"    location /stat {{ rtmp_stat all; }} }} }}\n")

    @property
    def notices(self) -> list[Notice]:
        assert self._notices is not None, "NginxRtmp(watch=True) records notices"
        return list(self._notices.notices)

    def publishers(self, key: str) -> list[str]:
        """The ids of the clients publishing stream `key` now, from nginx-rtmp's statistics."""
        assert self._notices is not None, "NginxRtmp(watch=True) serves its statistics"
        with urllib.request.urlopen(f"http://127.0.0.1:{self._stat_port}/stat", timeout=5) as r:
            root = ET.fromstring(r.read())
        return [client.findtext("id", "") for stream in root.iter("stream")
                if stream.findtext("name") == key
                for client in stream.iter("client") if client.find("publishing") is not None]

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        if self._notices is not None:
            self._notices.__exit__(None, None, None)
