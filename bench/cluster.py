"""The fleet on a three-node RabbitMQ cluster (harness/cluster.py), as a viewer and a publisher
see it.

1. Node kills: two workers share one 720p30 channel (lite animator), every node given to both;
   each round three texts are published, and once the first is on air the node holding the
   owner's lease connection is killed (SIGKILL). A client measures the longest wait for video
   after the kill; the lifecycle events count each text's airings (twice: more than one
   `finished`; lost: none within 90 s). The node comes back before the next round.
2. What quorum queues and the ledger cost on publish -> first frame on air (the daemon's own
   account, `aired_at`), for one short text at a time: classic queues without the ledger and
   quorum queues with it on the single default node, then on the cluster.

  python -m bench cluster      (about 3 minutes)
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from avatarcast.settings import FleetSettings
from harness.arrivals import Arrivals, largest_gap
from harness.cluster import RabbitCluster
from harness.daemon import DaemonProc, QueueNames, delete_queues, publish, write_channels
from harness.events import EventTap
from harness.services import NginxRtmp, ensure_rabbitmq

from . import ledger_read, report
from .fleet import owner_of_live
from .session import Session, channels_worker

KILLS = 5
ROUNDS = 10
TEXTS = ["The first text of the round is on air when its broker node dies, and it goes on.",
         "The second text.", "The third text."]


def _stats(xs: list[float], scale: float = 1.0) -> dict[str, Any]:
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median": round(statistics.median(xs) * scale, 2),
            "p95": round(float(np.percentile(xs, 95)) * scale, 2),
            "max": round(max(xs) * scale, 2), "all": [round(x * scale, 2) for x in xs]}


def _lease_node(cluster: RabbitCluster, worker: DaemonProc) -> int:
    """The node the worker's leases' connection is on (its name carries the worker's pid)."""
    out = cluster.rabbitmqctl(_up(cluster), "list_connections", "port", "client_properties",
                              "--formatter", "json")
    for conn in json.loads(out or "[]"):
        props = {p[0]: p[2] for p in conn["client_properties"]}
        if str(props.get("connection_name", "")).endswith(f":{worker.proc.pid}"):
            return cluster.ports.index(int(conn["port"]))  # (the node's own AMQP port)
    raise RuntimeError("the owner's lease connection is on no node")


def _up(cluster: RabbitCluster) -> int:
    return next(i for i in range(len(cluster.nodes)) if cluster.state(i) == "running")


def _owner(workers: list[DaemonProc], limit_s: float = 120) -> DaemonProc:
    return owner_of_live(workers, limit_s, connected=True)


def kills(work: Path, cluster: RabbitCluster) -> dict[str, Any]:
    rtmp = NginxRtmp(work / "rtmp")
    rtmp.start()
    url = rtmp.url("cluster")
    write_channels(work / "channels.toml", {"live": url})
    queues = QueueNames.unique()
    q = queues.channel("live")

    def worker(name: str, first: int) -> DaemonProc:
        order = [cluster.url((first + k) % 3) for k in range(3)]
        return channels_worker(work, name, queues, work / "channels.toml",
                               AVATARCAST_FLEET__CAPACITY="1",
                               AVATARCAST_BROKER__URLS=json.dumps(order))

    workers = [worker("w0", 0)]
    _owner(workers, 300)  # the first start prepares the avatar
    workers.append(worker("w1", 1))
    gaps: list[float] = []
    twice = lost = 0
    kept = 0
    rounds: list[dict[str, Any]] = []
    try:
        for r in range(KILLS):
            owner = _owner(workers)
            node = _lease_node(cluster, owner)
            survivor = cluster.url((node + 1) % 3)
            ids = [f"k{r}-{i}" for i in range(len(TEXTS))]
            with EventTap(queues.events, url=survivor) as tap:
                for msg_id, text in zip(ids, TEXTS, strict=True):
                    publish(q.speak, {"type": "speak", "id": msg_id, "text": text},
                            url=survivor)
                owner.wait_for(lambda s, i=ids[0]: s["channels"]["live"].get("on_air") == i,
                               60, "on air")
                viewer = Arrivals(url, idle_timeout_s=30)
                try:
                    viewer.wait_packets(30, 30)
                    killed = time.monotonic()
                    cluster.kill(node)
                    deadline = time.monotonic() + 90
                    while time.monotonic() < deadline and not all(
                            any(e["event"] == "finished" for e in tap.of(i)) for i in ids):
                        time.sleep(0.2)
                    time.sleep(2.0)
                finally:
                    rows = viewer.stop()
                after = rows[rows[:, 1] >= killed - 1]
                gaps.append(largest_gap(after) if len(after) > 1 else 90.0)
                counts = [[e["event"] for e in tap.of(i)].count("finished") for i in ids]
                twice += sum(c > 1 for c in counts)
                lost += sum(c == 0 for c in counts)
            after = _owner(workers)
            kept += after is owner
            said = [line[24:220] for line in owner.log().splitlines()
                    if "lease" in line or "lost the broker" in line or "took channel" in line]
            rounds.append({"node": cluster.nodes[node], "owner": owner.workdir.name,
                           "then": after.workdir.name, "gap_s": round(gaps[-1], 2),
                           "owner_said": said[-3:]})
            print(f"round {r}: {rounds[-1]}", flush=True)
            cluster.start_node(node)
    finally:
        for w in workers:
            w.stop()
        rtmp.stop()
        delete_queues(q, url=cluster.url(_up(cluster)))
    return {"kills": KILLS, "gap_at_client_s": _stats(gaps), "aired_twice": twice,
            "lost": lost, "owner_kept_the_channel": kept, "rounds": rounds,
            "settings": {"fleet.heartbeat_s": FleetSettings().heartbeat_s,
                         "fleet.fence_s": FleetSettings().fence_s,
                         "broker.reconnect_interval_s": 2.0, "net_ticktime_s": 10}}


def first_frame(work: Path, env: dict[str, str], url: str | None) -> list[float]:
    """publish -> the text's first frame on air, ROUNDS times, one text at a time."""
    took = []
    with Session(work, "720p", env) as s:
        for i in range(ROUNDS):
            s.wait_idle()
            t = time.time()
            if url is None:
                publish(s.queues.speak, {"type": "speak", "id": f"f{i}", "text": "Hello there."})
            else:
                publish(s.queues.speak, {"type": "speak", "id": f"f{i}", "text": "Hello there."},
                        url=url)
            entry = s.entry(f"f{i}", timeout=60)
            if entry.get("aired_at") is None:
                raise RuntimeError(f"f{i} did not air: {entry}")
            took.append(entry["aired_at"] - t)
    return took


def measure() -> dict[str, Any]:
    ensure_rabbitmq()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="avatarcast-cluster-") as tmp:
        work = Path(tmp)
        for name, env in (("classic, no ledger (one node)",
                           {"AVATARCAST_BROKER__QUEUE_TYPE": "classic",
                            "AVATARCAST_BROKER__LEDGER": "off"}),
                          ("quorum + ledger (one node)", {})):
            figures.setdefault("first_frame_ms", {})[name] = _stats(
                first_frame(work / name.split()[0], env, None), 1000)
        figures["ledger_read"] = ledger_read.measure()
        cluster = RabbitCluster(Path(tempfile.gettempdir()) / "avatarcast-bench-cluster",
                                prefix="avb")
        cluster.start()
        try:
            figures["first_frame_ms"]["quorum + ledger (three nodes)"] = _stats(first_frame(
                work / "three", {"AVATARCAST_BROKER__URLS": json.dumps(cluster.urls)},
                cluster.url(0)), 1000)
            figures["node_killed"] = kills(work / "kills", cluster)
        finally:
            cluster.close()
    return figures


def rows(f: dict[str, Any]) -> list[tuple[str, ...]]:
    k = f["node_killed"]
    g = k["gap_at_client_s"]
    out = [(f"owner's node killed ({k['kills']} times): longest wait for video at a client",
            f"median {g.get('median')} s, p95 {g.get('p95')} s, max {g.get('max')} s",
            "back within seconds", report.verdict(g.get("p95", 1e9) <= 5)),
           ("texts aired twice / lost", f"{k['aired_twice']} / {k['lost']}", "0 / 0",
            report.verdict(k["aired_twice"] == 0 and k["lost"] == 0)),
           ("the owner kept its channel", f"{k['owner_kept_the_channel']} of {k['kills']}",
            "", "")]
    for name, s in f["first_frame_ms"].items():
        out.append((f"publish -> first frame on air, {name}",
                    f"median {s['median']} ms, p95 {s['p95']} ms", "", ""))
    led = f.get("ledger_read")
    if led:
        w = led["window"]
        for total in (w, 5 * w):
            r = led[f"read_{w}_of_{total}_ms"]
            out.append((f"a starting owner reads the ledger: {w} ids of {total}",
                        f"median {r['median']} ms, max {r['max']} ms (n={r['n']})",
                        "bounded by the window", ""))
        out.append(("ledger appends, confirmed", f"{led['appends_per_s']} a second", "", ""))
    return out


def draw(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = record["figures"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(f["node_killed"]["gap_at_client_s"].get("all", []), "o-")
    a.set(xlabel="round (owner's node killed)", ylabel="longest wait for video, s",
          ylim=(0, None), title="node killed")
    for name, s in f["first_frame_ms"].items():
        b.plot(s.get("all", []), "o-", label=name)
    b.set(xlabel="text", ylabel="publish -> first frame, ms", ylim=(0, None),
          title="queues and ledger")
    b.legend(fontsize=7)
    fig.suptitle(f"avatarcast on a RabbitMQ cluster, {record['stamp']}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
