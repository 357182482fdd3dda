"""A fleet on a three-node RabbitMQ cluster (harness/cluster.py), against real workers and
nginx-rtmp: the node the owner is connected to dies with a backlog on air, and every text
still airs exactly once, nothing left in the queues, the stream back at a client within
seconds."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.arrivals import Arrivals, largest_gap
from harness.cluster import RabbitCluster
from harness.daemon import DaemonProc, QueueNames, delete_queues, publish, queue_depth
from harness.events import EventTap
from harness.services import NginxRtmp
from tests.app.test_fleet_e2e import LONG, _channels_file, _finished_once, _ready, _worker

pytestmark = pytest.mark.services


def _on(cluster: RabbitCluster, first: int, name: str, tmp_path: Path, queues: QueueNames,
        **extra: str) -> DaemonProc:
    """A worker given every node, `first` first (its connections start there)."""
    order = [cluster.url((first + k) % 3) for k in range(3)]
    return _worker(tmp_path, name, queues, 1, AVATARCAST_BROKER__URLS=json.dumps(order),
                   AVATARCAST_BROKER__RECONNECT_INTERVAL_S="0.5", **extra)


def _owner_and_standby(cluster: RabbitCluster, tmp_path: Path, queues: QueueNames,
                       workers: list[DaemonProc]) -> None:
    """w1 runs the channel from node 1, w2 stands by from node 2 (both appended to
    `workers` as they start, for the test to kill)."""
    w1 = _on(cluster, 0, "w1", tmp_path, queues)
    workers.append(w1)
    w1.wait_for(lambda s: _ready(s, 1), 90, "w1 runs the channel")
    w2 = _on(cluster, 1, "w2", tmp_path, queues)
    workers.append(w2)
    w2.wait_for(lambda s: s.get("leases_connected"), 60, "w2 stands by")


def test_the_owners_node_killed_with_a_backlog_airs_every_text_once(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp, cluster: RabbitCluster,
) -> None:
    urls = _channels_file(tmp_path, rtmp_server, "a")
    q = queues.channel("a")
    survivor = cluster.url(2)  # the test's own connections: never on the node it kills
    workers: list[DaemonProc] = []
    ids = ["n1", "n2", "n3"]
    try:
        with EventTap(queues.events, url=survivor) as tap:
            _owner_and_standby(cluster, tmp_path, queues, workers)
            w1 = workers[0]
            for i, text in zip(ids, [LONG, "The second message.", "The third message."],
                               strict=True):
                publish(q.speak, {"type": "speak", "id": i, "text": text}, url=survivor)
            leader = cluster.queue_info(q.speak).get("leader")
            w1.wait_for(lambda s: s["channels"]["a"].get("on_air") == "n1", 60, "n1 on air")
            viewer = Arrivals(urls["a"], idle_timeout_s=20)
            try:
                viewer.wait_packets(30, 30)
                killed = time.monotonic()
                cluster.kill(0)
                _finished_once(tap, ids)
                print(f"\nnode 1 killed (the speak queue's leader was {leader}); every text "
                      f"finished {time.monotonic() - killed:.1f} s later")
                time.sleep(2.0)
            finally:
                rows = viewer.stop()
            after = rows[rows[:, 1] >= killed - 1]
            print(f"largest gap in the video at the client after the kill: "
                  f"{largest_gap(after):.2f} s")
            assert len(rows[rows[:, 1] > killed]) > 30  # on air at the client after the kill
        owners = [w.workdir.name for w in workers if (w.status() or {}).get("owned") == ["a"]]
        assert len(owners) == 1, owners
        kept = "kept" if owners == ["w1"] else "taken over by the standby"
        print(f"the channel was {kept}: "
              f"{[line for line in w1.log().splitlines() if 'leases' in line][-1:]}")
        for w in workers:
            assert w.stop() == 0
        assert queue_depth(q.speak, url=survivor) == 0
        assert queue_depth(q.dead, url=survivor) == 0
    finally:
        for w in workers:
            w.kill()
        cluster.start_node(0)
        delete_queues(q, url=survivor)


def test_two_nodes_of_three_stop_and_return_and_every_text_airs_once(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp, cluster: RabbitCluster,
) -> None:
    """The owner's node and another stop: the queues have no quorum (nothing can be taken or
    acked) until they return; then the backlog airs, each text once, and nothing is left."""
    _channels_file(tmp_path, rtmp_server, "a")
    q = queues.channel("a")
    survivor = cluster.url(2)
    w1 = _on(cluster, 0, "w1", tmp_path, queues)
    ids = ["q1", "q2", "q3", "q4"]
    try:
        with EventTap(queues.events, url=survivor) as tap:
            w1.wait_for(lambda s: _ready(s, 1), 90, "w1 runs the channel")
            # Two long texts: the second is still waiting when the nodes stop.
            for i, text in zip(ids, [LONG, LONG, "The third message.", "The fourth message."],
                               strict=True):
                publish(q.speak, {"type": "speak", "id": i, "text": text}, url=survivor)
            w1.wait_for(lambda s: s["channels"]["a"].get("on_air") == "q1", 60, "q1 on air")
            stopped = time.monotonic()
            with ThreadPoolExecutor(2) as both:
                list(both.map(cluster.stop, [0, 1]))
            down = time.monotonic()
            done_before = {e["id"] for e in tap.events if e["event"] == "finished"}
            time.sleep(8.0)
            done_without_quorum = {e["id"] for e in tap.events
                                   if e["event"] == "finished"} - done_before
            st = w1.status() or {}
            on_air = st.get("channels", {}).get("a", {}).get("on_air")
            print(f"\ntwo nodes stopped in {down - stopped:.1f} s; without a quorum for 8 s: "
                  f"w1 owns {st.get('owned')}, on air {on_air}, finished before "
                  f"{sorted(done_before)}, meanwhile {sorted(done_without_quorum)}")
            with ThreadPoolExecutor(2) as both:
                list(both.map(cluster.start_node, [0, 1]))
            back = time.monotonic()
            print(f"back {back - down:.1f} s after they were down")
            _finished_once(tap, ids)
            print(f"every text finished {time.monotonic() - back:.1f} s after they were back")
        assert w1.stop() == 0
        assert queue_depth(q.speak, url=survivor) == 0
        assert queue_depth(q.dead, url=survivor) == 0
    finally:
        w1.kill()
        delete_queues(q, url=survivor)


def test_a_frozen_node_partitioned_then_healed_airs_every_text_once(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp, cluster: RabbitCluster,
) -> None:
    """The owner's node hangs (SIGSTOP: its sockets stay open, it answers nothing), the others
    give up on it after net_ticktime, it wakes on the wrong side of a partition, and the
    partition is healed (its app restarted, as an operator or pause_minority would): the
    channel is back on one owner, every text airs once, nothing is left in the queues."""
    urls = _channels_file(tmp_path, rtmp_server, "a")
    q = queues.channel("a")
    survivor = cluster.url(2)
    workers: list[DaemonProc] = []
    ids = ["p1", "p2", "p3"]
    try:
        with EventTap(queues.events, url=survivor) as tap:
            _owner_and_standby(cluster, tmp_path, queues, workers)
            w1 = workers[0]
            for i, text in zip(ids, [LONG, "The second message.", "The third message."],
                               strict=True):
                publish(q.speak, {"type": "speak", "id": i, "text": text}, url=survivor)
            w1.wait_for(lambda s: s["channels"]["a"].get("on_air") == "p1", 60, "p1 on air")
            viewer = Arrivals(urls["a"], idle_timeout_s=60)
            try:
                viewer.wait_packets(30, 30)
                frozen = time.monotonic()
                cluster.freeze(0)
                _finished_once(tap, ids)
                print(f"\nnode 1 frozen; every text finished {time.monotonic() - frozen:.1f} s "
                      "later")
                cluster.heal()
                print(f"thawed and healed {time.monotonic() - frozen:.1f} s after the freeze")
                time.sleep(2.0)
            finally:
                rows = viewer.stop()
            after = rows[rows[:, 1] >= frozen - 1]
            print(f"largest gap in the video at the client after the freeze: "
                  f"{largest_gap(after):.2f} s")
            assert len(after) > 30
            time.sleep(1.0)
            assert all([e["event"] for e in tap.of(i)].count("finished") == 1 for i in ids)
        owners = [w.workdir.name for w in workers if (w.status() or {}).get("owned") == ["a"]]
        assert len(owners) == 1, owners
        print(f"owner after the heal: {owners[0]}")
        for w in workers:
            assert w.stop() == 0
        assert queue_depth(q.speak, url=survivor) == 0
        assert queue_depth(q.dead, url=survivor) == 0
    finally:
        for w in workers:
            w.kill()
        delete_queues(q, url=survivor)
