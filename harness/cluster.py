"""A three-node RabbitMQ cluster on this machine, for tests of what happens when brokers die,
stop or freeze: `RabbitCluster(base).start()`, then `url(i)`, `kill(i)`, `stop(i)`,
`start_node(i)`, `freeze(i)` / `thaw(i)`, `heal()`, `running()`, `queue_info(name)`, `close()`.

It runs beside the default node (rabbit@localhost on 5672) and never touches it: its nodes are
`avc1@localhost` … `avc3@localhost`, each with an AMQP port and an Erlang distribution port of
its own (free ones, picked at start), its own data, log, config, env and enabled-plugins files
under `base` (so /etc/rabbitmq/rabbitmq-env.conf, rabbitmq.conf and conf.d are not read), and no
plugins. They share the Erlang cookie of the `rabbitmq` user (/var/lib/rabbitmq/.erlang.cookie)
with rabbitmqctl: run as root, /usr/sbin/rabbitmq-server and rabbitmqctl `su` to `rabbitmq`
(HOME /var/lib/rabbitmq, where the cookie is) and keep the caller's environment, so no
`--erlang-cookie` is needed.

Cost, measured on the 2-core test machine (RabbitMQ 3.10.8, Erlang 25): `start()` takes about
19-23 s (`started_in`): the three nodes boot in parallel in 13-16 s, the two joins take 5-7 s.
Each node's Erlang VM holds about 125 MB (node 1) to 145-150 MB (the joined ones) resident
right after start (`rss_mb()`). `start_node(i)` takes 5-13 s. A SIGKILLed node is gone from
its peers' view at once (its distribution connections close with it); a frozen one only after
`net_ticktime` (10 s here, so 10-12.5 s; 60 s is Erlang's default), and once thawed it stays
partitioned (the default `cluster_partition_handling = ignore`) until `heal()`.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .services import free_port, port_open

log = logging.getLogger(__name__)

USER = "rabbitmq"  # the Debian package's server user; its HOME holds the shared Erlang cookie
CLI_DIST_PORTS = range(35672, 35683)  # where rabbitmqctl's own Erlang node listens
T = TypeVar("T")


class ClusterError(RuntimeError):
    pass


@dataclass
class _Node:
    name: str  # avc1@localhost
    port: int  # AMQP
    dist_port: int  # Erlang distribution
    dir: Path
    pid: int | None = None  # the OS pid of its beam.smp while it runs
    state: str = "new"  # new, running, frozen, stopped, killed, closed


def _port() -> int:
    """A free port outside the range rabbitmqctl's own Erlang node listens in."""
    while True:
        port = free_port()
        if port not in CLI_DIST_PORTS:
            return port


def _beam_pids(node: str) -> list[int]:
    """The OS pids of the Erlang VMs (beam.smp) of RabbitMQ node `node`, found by the
    RABBITMQ_NODENAME in their environment (3.10 names its node after boot, so the command line
    does not carry it)."""
    needle = f"RABBITMQ_NODENAME={node}".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry.path, "comm").read_text().strip() != "beam.smp":
                continue
            if needle in Path(entry.path, "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return pids


def _atoms(erlang_list: str) -> list[str]:
    """['a@h', b@h] (an Erlang list of node names, as `rabbitmqctl eval` prints it) -> names."""
    return re.findall(r"[\w.-]+@[\w.-]+", erlang_list)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait(what: str, check: Callable[[], bool], timeout: float, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ClusterError(f"{what}: not after {timeout} s")
        time.sleep(every)


def _wait_gone(node: str, pids: list[int], timeout: float) -> None:
    _wait(f"{node}'s VM {pids} gone", lambda: not any(_alive(p) for p in pids), timeout)


def _parallel(fn: Callable[[int], T], items: Iterable[int]) -> list[T]:
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(fn, items))


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


class RabbitCluster:
    """`size` RabbitMQ nodes clustered on this machine, their files under `base`.

    `base` must be reachable by the `rabbitmq` user for as long as the cluster runs: `start()`
    adds search permission (o+x) to it and its parents where missing. Do not put it under
    pytest's basetemp: pytest resets /tmp/pytest-of-<user> to 0700 whenever a session starts, so
    a second pytest run (anyone's) would cut the running nodes off their own files.

    `net_ticktime` (seconds) is how long a node takes to give up on a peer that stopped answering
    (frozen); `extra_conf` is appended to each node's rabbitmq.conf (e.g.
    `cluster_partition_handling = pause_minority`)."""

    def __init__(self, base: Path, size: int = 3, prefix: str = "avc", *,
                 net_ticktime: int = 10, extra_conf: str = "", boot_timeout: float = 60) -> None:
        self.base = Path(base).resolve()
        self.net_ticktime = net_ticktime
        self.extra_conf = extra_conf
        self.boot_timeout = boot_timeout
        self.started_in: float | None = None  # seconds the last start() took
        self._froze = False  # a node was frozen since the last heal()
        self._nodes = [_Node(f"{prefix}{k}@localhost", 0, 0, self.base / f"{prefix}{k}")
                       for k in range(1, size + 1)]

    # --- what a test reads --------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        return [n.name for n in self._nodes]

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self._nodes]

    def url(self, i: int) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self._nodes[i].port}/"

    @property
    def urls(self) -> list[str]:
        return [self.url(i) for i in range(len(self._nodes))]

    def state(self, i: int) -> str:
        """What this harness did to node i last: running, frozen, stopped, killed (or new,
        closed)."""
        return self._nodes[i].state

    def pid(self, i: int) -> int | None:
        """The OS pid of node i's Erlang VM, None when it does not run."""
        return self._nodes[i].pid

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each running node's Erlang VM, in MB."""
        return {n.name: round(_rss_mb(n.pid), 1) for n in self._nodes
                if n.pid is not None and _alive(n.pid)}

    # --- the whole cluster --------------------------------------------------------------------

    def start(self) -> None:
        """Start all nodes (leftovers of an earlier run of these names killed and wiped first),
        join nodes 2.. to node 1 and check that all are running in one cluster."""
        t0 = time.monotonic()
        if shutil.which("rabbitmq-server") is None:
            raise ClusterError("RabbitMQ is not installed (apt-get install rabbitmq-server)")
        self._kill_leftovers()
        self._prepare()
        _parallel(self._launch, range(len(self._nodes)))
        _parallel(self._await_up, range(len(self._nodes)))
        booted = time.monotonic() - t0
        joiners = range(1, len(self._nodes))
        _parallel(lambda i: self.rabbitmqctl(i, "stop_app", timeout=60), joiners)
        for i in joiners:  # one at a time: each changes the cluster's membership
            self.rabbitmqctl(i, "join_cluster", self._nodes[0].name, timeout=60)
        _parallel(lambda i: self.rabbitmqctl(i, "start_app", timeout=120), joiners)
        self._wait_running(set(self.nodes), 60, via=0)
        self.started_in = time.monotonic() - t0
        log.info("RabbitMQ cluster %s up in %.1f s (booted in %.1f s); ports %s; RSS MB %s",
                 self.nodes, self.started_in, booted, self.ports, self.rss_mb())

    def close(self) -> None:
        """Stop every node: gracefully for up to 10 s, then SIGKILL. Files stay (the next
        start wipes them). Safe to call twice, or after a failed start."""
        for n in self._nodes:
            if n.state == "frozen":
                for pid in _beam_pids(n.name):
                    os.kill(pid, signal.SIGCONT)
                n.state = "running"

        def stop(i: int) -> None:
            n = self._nodes[i]
            pids = _beam_pids(n.name)
            if n.state != "running" or not pids:
                return
            t0 = time.monotonic()
            try:
                self.rabbitmqctl(i, "stop", timeout=10)
                _wait_gone(n.name, pids, max(0.5, 10 - (time.monotonic() - t0)))
            except (ClusterError, subprocess.TimeoutExpired) as e:
                log.warning("graceful stop of %s failed, it gets SIGKILL: %s", n.name, e)

        _parallel(stop, range(len(self._nodes)))
        self._kill_leftovers()
        for n in self._nodes:
            n.pid = None
            n.state = "closed"

    def __enter__(self) -> RabbitCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one node -----------------------------------------------------------------------------

    def kill(self, i: int) -> None:
        """SIGKILL node i's Erlang VM (frozen or not) and wait until its port is closed."""
        n = self._nodes[i]
        pids = _beam_pids(n.name)
        if not pids:
            raise ClusterError(f"{n.name} does not run")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        _wait_gone(n.name, pids, 15)
        _wait(f"{n.name}'s port {n.port} closed", lambda: not port_open(n.port), 15)
        n.pid, n.state = None, "killed"
        log.info("killed %s (pid %s)", n.name, pids)

    def stop(self, i: int) -> None:
        """Stop node i gracefully (`rabbitmqctl stop`) and wait until its VM has exited."""
        n = self._nodes[i]
        self._expect(n, "running")
        pids = _beam_pids(n.name)
        self.rabbitmqctl(i, "stop", timeout=60)
        _wait_gone(n.name, pids, 60)
        _wait(f"{n.name}'s port {n.port} closed", lambda: not port_open(n.port), 15)
        n.pid, n.state = None, "stopped"
        log.info("stopped %s", n.name)

    def start_node(self, i: int) -> None:
        """Bring a stopped or killed node i back with its data: it rejoins the cluster by itself
        (it keeps its membership); wait until an up peer sees it running."""
        n = self._nodes[i]
        self._expect(n, "stopped", "killed")
        t0 = time.monotonic()
        self._launch(i)
        self._await_up(i)
        peers = [k for k in self._up() if k != i]
        if peers:
            self._wait_running({n.name}, 60, via=peers[0])
        log.info("%s back in %.1f s", n.name, time.monotonic() - t0)

    def heal(self) -> None:
        """Thaw frozen nodes, start stopped or killed ones, restart the app of the nodes on the
        small side of a partition, and wait until all run together, unpartitioned."""
        thawed = [i for i, n in enumerate(self._nodes) if n.state == "frozen"]
        for i in thawed:
            self.thaw(i)
        _parallel(self.start_node, [i for i, n in enumerate(self._nodes)
                                    if n.state in ("stopped", "killed")])
        if thawed:
            time.sleep(2)  # a thawed node notices at once that its peers gave up on it
        deadline = time.monotonic() + 90
        views: list[set[str]] = []
        while True:
            # Only a freeze splits the cluster here (a killed or stopped node comes back new).
            parts = self.partitions() if self._froze else {}
            if any(parts.values()):
                # Restart the side cut off from most (all but one if every node is).
                worst = max(len(v) for v in parts.values())
                losers = [i for i in self._up() if len(parts[self._nodes[i].name]) == worst]
                losers = losers[1:] if losers == self._up() else losers
                log.info("healing a partition %s: restarting %s", parts,
                         [self._nodes[i].name for i in losers])
                _parallel(lambda i: self.rabbitmqctl(i, "stop_app", timeout=60), losers)
                _parallel(lambda i: self.rabbitmqctl(i, "start_app", timeout=120), losers)
            else:
                views = _parallel(lambda i: set(self.running(i)), self._up())
                if all(view == set(self.nodes) for view in views) and not (
                        self._froze and any(self.partitions().values())):
                    self._froze = False
                    return
            if time.monotonic() > deadline:
                raise ClusterError(f"not healed after 90 s: partitions {self.partitions()}, "
                                   f"running as each node sees it {views}")
            time.sleep(0.5)

    def freeze(self, i: int) -> None:
        """SIGSTOP node i's VM: it holds its sockets but answers nothing (a hung broker; its
        peers give up on it after net_ticktime)."""
        n = self._nodes[i]
        self._expect(n, "running")
        self._signal(n, signal.SIGSTOP)
        n.state = "frozen"
        self._froze = True  # heal() looks for partitions until it has seen none

    def thaw(self, i: int) -> None:
        """SIGCONT a frozen node i."""
        n = self._nodes[i]
        self._expect(n, "frozen")
        self._signal(n, signal.SIGCONT)
        n.state = "running"

    # --- asking the cluster -------------------------------------------------------------------

    def rabbitmqctl(self, i: int, *args: str, timeout: float = 30) -> str:
        """Run `rabbitmqctl -q -n NODE args` against node i; its stdout. ClusterError when it
        fails, subprocess.TimeoutExpired when it outlasts `timeout`."""
        cmd = ["rabbitmqctl", "-q", "-n", self._nodes[i].name, *args]
        env = {**os.environ, "RABBITMQ_CTL_ERL_ARGS": f"-kernel net_ticktime {self.net_ticktime}"}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)}: exit {proc.returncode}\n"
                               f"{proc.stdout.strip()}\n{proc.stderr.strip()}")
        return proc.stdout

    def running(self, via: int | None = None) -> list[str]:
        """The cluster's running nodes as an up node sees them now: node `via`, or the first
        up node that answers. Its own view, asked of it alone (`rabbit_nodes:all_running()`):
        `rabbitmqctl cluster_status` asks every node and hangs while one is frozen. A frozen
        node counts as running until its peers give up on it (`net_ticktime`)."""
        return _atoms(self._eval(self._up() if via is None else [via],
                                 "rabbit_nodes:all_running()."))

    def partitions(self) -> dict[str, list[str]]:
        """For each up node, the nodes it has been partitioned from (empty when none). With
        the default `cluster_partition_handling = ignore`, a node frozen past `net_ticktime`
        and thawed stays partitioned from the others until its app restarts (`heal()`)."""
        up = self._up()
        views = _parallel(lambda i: _atoms(self._eval([i], "rabbit_node_monitor:partitions().")),
                          up)
        return {self._nodes[i].name: view for i, view in zip(up, views, strict=True)}

    def queue_info(self, name: str, vhost: str = "/", timeout: float = 30) -> dict[str, Any]:
        """Queue `name` as `rabbitmqctl list_queues` tells it: name, type, messages, leader,
        members, online (the last three for quorum queues and streams). It asks every node, so
        it waits while one is frozen."""
        for i in self._up():
            try:
                out = self.rabbitmqctl(i, "list_queues", "-p", vhost, "name", "type", "messages",
                                       "leader", "members", "online", "--formatter", "json",
                                       timeout=timeout)
            except (ClusterError, subprocess.TimeoutExpired) as e:
                log.warning("list_queues on %s: %s", self._nodes[i].name, e)
                continue
            for q in json.loads(out):
                if q["name"] == name:
                    info: dict[str, Any] = q
                    return info
            raise KeyError(f"no queue {name!r} in vhost {vhost!r}")
        raise ClusterError("no node answers")

    # --- inside -------------------------------------------------------------------------------

    def _up(self) -> list[int]:
        return [i for i, n in enumerate(self._nodes) if n.state == "running"]

    def _eval(self, via: list[int], expr: str) -> str:
        for i in via:
            try:
                return self.rabbitmqctl(i, "eval", expr, timeout=20)
            except (ClusterError, subprocess.TimeoutExpired) as e:
                log.warning("%s on %s: %s", expr, self._nodes[i].name, e)
        raise ClusterError(f"no node of {[self._nodes[i].name for i in via]} answers")

    def _wait_running(self, wanted: set[str], timeout: float, via: int | None = None) -> None:
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while True:
            try:
                seen = set(self.running(via))
            except ClusterError as e:  # a node busy (re)starting its app may fail to answer
                log.warning("%s", e)
            if wanted <= seen:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"running nodes {sorted(seen)}, not {sorted(wanted)}, "
                                   f"after {timeout} s")
            time.sleep(0.5)

    @staticmethod
    def _expect(n: _Node, *states: str) -> None:
        if n.state not in states:
            raise ClusterError(f"{n.name} is {n.state}, not {' or '.join(states)}")

    def _signal(self, n: _Node, sig: signal.Signals) -> None:
        pids = _beam_pids(n.name)
        if not pids:
            raise ClusterError(f"{n.name} does not run")
        for pid in pids:
            os.kill(pid, sig)

    def _kill_leftovers(self) -> None:
        """SIGKILL every VM of these node names (this run's, or a crashed earlier run's)."""
        for n in self._nodes:
            pids = _beam_pids(n.name)
            for pid in pids:
                log.info("killing %s (pid %d)", n.name, pid)
                os.kill(pid, signal.SIGKILL)
            _wait_gone(n.name, pids, 15)

    def _prepare(self) -> None:
        """Wipe and write each node's files: its rabbitmq.conf, env file, no plugins, its data
        and log dirs; all owned by the `rabbitmq` user."""
        user = pwd.getpwnam(USER)
        self.base.mkdir(parents=True, exist_ok=True)
        for p in (self.base, *self.base.parents):
            mode = p.stat().st_mode
            if not mode & 0o001:
                os.chmod(p, mode | 0o001)
                log.info("let %s search %s (o+x)", USER, p)
        for n in self._nodes:
            n.port, n.dist_port, n.pid, n.state = _port(), _port(), None, "new"
            shutil.rmtree(n.dir, ignore_errors=True)
            for sub in ("mnesia", "log", "conf.d"):
                (n.dir / sub).mkdir(parents=True)
            (n.dir / "rabbitmq.conf").write_text(
                f"listeners.tcp.default = 127.0.0.1:{n.port}\n"
                "log.console = false\n"
                f"{self.extra_conf}\n")
            (n.dir / "enabled_plugins").write_text("[].\n")
            # Read instead of /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost…).
            (n.dir / "rabbitmq-env.conf").write_text("ERL_EPMD_ADDRESS=127.0.0.1\n")
            for root, dirs, files in os.walk(n.dir):
                for name in (root, *(os.path.join(root, x) for x in dirs + files)):
                    os.chown(name, user.pw_uid, user.pw_gid)
        probe = subprocess.run(["su", USER, "-s", "/bin/sh", "-c",
                                f"test -w '{self._nodes[0].dir / 'mnesia'}'"],
                               timeout=10, check=False, capture_output=True)
        if probe.returncode != 0:
            raise ClusterError(f"user {USER} cannot write under {self.base}")

    def _env(self, n: _Node) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("RABBITMQ_") and k not in ("ERL_FLAGS", "ERL_AFLAGS")}
        d = n.dir
        env.update({
            "RABBITMQ_NODENAME": n.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(n.port),
            "RABBITMQ_DIST_PORT": str(n.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_CONFIG_FILES": str(d / "conf.d"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1} "
                f"-kernel net_ticktime {self.net_ticktime}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_CRASH_DUMP": str(d / "erl_crash.dump"),
        })
        return env

    def _launch(self, i: int) -> None:
        """`rabbitmq-server -detached` for node i; returns at once, the node boots on."""
        n = self._nodes[i]
        with open(n.dir / "launch.log", "ab") as out:
            subprocess.run(["rabbitmq-server", "-detached"], env=self._env(n),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30,
                           check=True)

    def _await_up(self, i: int) -> None:
        """Wait until node i listens on its AMQP port and rabbitmqctl await_startup agrees."""
        n = self._nodes[i]
        deadline = time.monotonic() + self.boot_timeout
        # Polling the port is cheap; each rabbitmqctl costs a second of CPU while nodes boot.
        while not port_open(n.port):
            if time.monotonic() > deadline:
                raise ClusterError(f"{n.name} not listening on {n.port} after "
                                   f"{self.boot_timeout} s; its log ends:\n"
                                   f"{_tail(n.dir / 'log' / f'{n.name}.log')}\n"
                                   f"{_tail(n.dir / 'launch.log')}")
            time.sleep(0.2)
        self.rabbitmqctl(i, "await_startup", "--timeout", "60", timeout=90)
        pids = _beam_pids(n.name)
        if len(pids) != 1:
            raise ClusterError(f"{n.name}: beam.smp pids {pids}")
        n.pid, n.state = pids[0], "running"
