"""The deployment files, tested as far as this machine can without Docker: what the images
install and run, the healthcheck against a real health server, the RTMP image's nginx
configuration served by a real nginx, and the compose file's wiring against the settings."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from avatarcast.broker.nodes import host_of, node_urls
from avatarcast.infra.rtmpcheck import handshake
from avatarcast.settings import BrokerSettings, HealthSettings, OutputSettings
from avatarcast.web.port import HttpPort
from harness.services import free_port, stop_process, wait_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _default(value: str) -> str:
    """What compose makes of ${VAR:-default} when VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_image_installs_what_the_daemon_needs_as_install_deps_does() -> None:
    apt = re.search(r"apt-get install -y --no-install-recommends ([^\n&]+)", DOCKERFILE)
    assert apt is not None and {"ffmpeg", "espeak-ng", "tini"} <= set(apt.group(1).split())
    pinned = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned is not None
    assert DOCKERFILE.count(f"torch=={pinned.group(1)}") == 2  # cpu and cuda variants
    for step in ("-r requirements.txt", "--no-deps -r requirements-nodeps.txt",
                 "--no-deps ."):
        assert f"pip install --no-cache-dir {step}" in DOCKERFILE
    # install-deps.sh runs the same pip steps, in the same order: the pinned torch first, the
    # runtime requirements (requirements.txt unless `dev`), the no-deps list, the checkout
    # (editable there) without its dependencies.
    deps = (ROOT / "scripts" / "install-deps.sh").read_text()
    assert re.search(r"^req=requirements\.txt$", deps, re.M)
    pip = [shlex.split(line.split("--disable-pip-version-check", 1)[1])
           for line in deps.splitlines() if re.search(r'/bin/pip" install\b', line)]
    assert pip == [[f"torch=={pinned.group(1)}"], ["-r", "$req"],
                   ["--no-deps", "-r", "requirements-nodeps.txt"], ["--no-deps", "-e", "."]]
    copied = re.findall(r"^COPY (.+) \./?\S*$", DOCKERFILE, re.M)
    for files in copied:
        for name in files.split():
            assert (ROOT / name).exists(), name
    assert re.search(r"^USER avatarcast$", DOCKERFILE, re.M)  # not root
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", DOCKERFILE, re.M).group(1))  # type: ignore[union-attr]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry == ["tini", "--", "avatarcast"] and "avatarcast" in scripts
    assert re.search(r'^CMD \["run"\]$', DOCKERFILE, re.M)


def test_the_healthcheck_passes_on_air_and_fails_otherwise() -> None:
    command = re.search(r"HEALTHCHECK .* CMD (.+)$", DOCKERFILE, re.M)
    assert command is not None
    argv = shlex.split(command.group(1))
    assert argv[:2] == ["python", "-c"]
    assert f":{HealthSettings().port}/healthz" in argv[2]
    port = free_port()
    code = argv[2].replace(f":{HealthSettings().port}/", f":{port}/")
    status = {"encoder_alive": True, "broker_connected": True}

    async def probe() -> tuple[int, int]:
        server = HttpPort("127.0.0.1", port, lambda: dict(status))
        await server.start()
        try:
            ok = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code],
                                         capture_output=True)
            status["broker_connected"] = False
            down = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code],
                                           capture_output=True)
            return ok.returncode, down.returncode
        finally:
            await server.aclose()

    ok, down = asyncio.run(probe())
    assert ok == 0 and down != 0


def test_the_rtmp_image_configuration_serves_rtmp(tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "rtmp.Dockerfile").read_text()
    subs = re.findall(r'-e "s#(@[A-Z]+@)#([^#]*)#g"', text)
    assert dict(subs) == {"@PREFIX@": "/var/lib/nginx-rtmp", "@LISTEN@": "1935"}
    conf = (ROOT / "deploy" / "nginx-rtmp.conf.in").read_text()
    for key, value in subs:
        conf = conf.replace(key, value)
    assert "listen 1935;" in conf and not re.search(r"@[A-Z]+@", conf)
    # The same configuration, on a free port and in a folder of the test's own.
    port = free_port()
    conf = conf.replace("listen 1935;", f"listen 127.0.0.1:{port};").replace(
        "/var/lib/nginx-rtmp", str(tmp_path))
    (tmp_path / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, 10)
        assert handshake(f"rtmp://127.0.0.1:{port}/live/avatar") < 5
    finally:
        stop_process(proc)


def test_compose_wires_the_worker_to_its_broker_and_server() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"rabbitmq", "rtmp", "avatarcast"}
    worker = services["avatarcast"]
    env = {k: _default(str(v)) for k, v in worker["environment"].items()}
    broker = BrokerSettings.model_validate({"url": env["AVATARCAST_BROKER__URL"]})
    assert "@rabbitmq:5672/" in broker.url.get_secret_value()
    outputs = OutputSettings.model_validate(
        {"rtmp_urls": json.loads(env["AVATARCAST_OUTPUT__RTMP_URLS"])})
    assert [u.get_secret_value() for u in outputs.rtmp_urls] == ["rtmp://rtmp:1935/live/avatar"]
    assert f"127.0.0.1:{HealthSettings().port}:{HealthSettings().port}" in worker["ports"]
    # The image listens on every address inside the container: the console needs its token.
    assert "ENV AVATARCAST_HEALTH__HOST=0.0.0.0" in DOCKERFILE
    # No default token (one in this file would be public): the console is off until .env sets
    # one, and an empty value is no token at all.
    assert worker["environment"]["AVATARCAST_HEALTH__TOKEN"] == "${AVATARCAST_CONSOLE_TOKEN:-}"
    assert HealthSettings.model_validate({"token": env["AVATARCAST_HEALTH__TOKEN"]}).token is None
    assert worker["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert "15672" in " ".join(services["rabbitmq"]["ports"])  # the management UI
    assert services["rtmp"]["build"]["dockerfile"] == "deploy/rtmp.Dockerfile"
    # Longer than the daemon's own drain (shutdown.grace_s), so a stop ends the stream cleanly.
    assert int(worker["stop_grace_period"].rstrip("s")) > 30


def test_the_cluster_override_runs_three_nodes_the_worker_knows_all_of() -> None:
    """deploy/compose.cluster.yml: three RabbitMQ nodes that list each other and share one
    cookie, and a worker whose broker URL names the three of them."""
    over = yaml.safe_load((ROOT / "deploy" / "compose.cluster.yml").read_text())["services"]
    nodes = {name: svc for name, svc in over.items() if name.startswith("rabbitmq")}
    assert set(nodes) == {"rabbitmq", "rabbitmq2", "rabbitmq3"}
    conf = (ROOT / "deploy" / "rabbitmq-cluster.conf").read_text()
    listed = re.findall(r"^cluster_formation\.classic_config\.nodes\.\d = rabbit@(\S+)$", conf,
                        re.M)
    assert sorted(listed) == sorted(svc["hostname"] for svc in nodes.values())
    cookies = {svc["environment"]["RABBITMQ_ERLANG_COOKIE"] for svc in nodes.values()}
    assert len(cookies) == 1
    for svc in nodes.values():
        assert any(v.endswith("conf.d/20-cluster.conf:ro") for v in svc["volumes"])
        assert any(v.endswith(":/var/lib/rabbitmq") for v in svc["volumes"])
    worker = over["avatarcast"]
    url = _default(worker["environment"]["AVATARCAST_BROKER__URL"])
    broker = BrokerSettings.model_validate({"url": url})
    assert [host_of(u) for u in node_urls(broker)] == \
        [f"{svc['hostname']}:5672" for svc in nodes.values()]
    assert set(worker["depends_on"]) == set(nodes)


@pytest.mark.parametrize("variant", ["cpu", "cuda"])
def test_each_variant_has_its_torch(variant: str) -> None:
    branch = re.search(rf"^\s+{variant}\) (.+?) ;; \\$", DOCKERFILE, re.M)
    assert branch is not None and "torch==" in branch.group(1)
    assert ("download.pytorch.org/whl/cpu" in branch.group(1)) == (variant == "cpu")
