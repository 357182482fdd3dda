"""A fleet of workers sharing a channels file, against real RabbitMQ and nginx-rtmp: each
channel is run by one worker at a time; when its owner is killed or frozen, a standby takes it
over, its backlog intact and nothing aired twice, and the old owner never publishes again."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.amqp_relay import AmqpRelay
from harness.daemon import (
    DaemonProc,
    QueueNames,
    Receiver,
    aired,
    consumers,
    delete_queues,
    packets,
    publish,
    write_channels,
)
from harness.daemon import queue_depth as depth
from harness.events import EventTap
from harness.services import NginxRtmp, rabbitmqctl, wait_port

pytestmark = pytest.mark.services
LONG = ("This is the first message, long enough to be on air when its worker dies. "
        "It goes on for a while, sentence after sentence, so that there is time.")


@pytest.fixture
def watched_rtmp(tmp_path: Path) -> Iterator[NginxRtmp]:
    """nginx-rtmp that tells who publishes (its on_publish notices and statistics)."""
    server = NginxRtmp(tmp_path / "nginx", watch=True)
    server.start()
    yield server
    server.stop()


def _worker(tmp_path: Path, name: str, queues: QueueNames, capacity: int,
            channels: str = "channels.toml", **extra: str) -> DaemonProc:
    return DaemonProc(tmp_path / name, queues, {
        **extra,
        "AVATARCAST_CHANNELS_FILE": str(tmp_path / channels),
        "AVATARCAST_OUTPUT__RTMP_URLS": "[]",
        "AVATARCAST_FACE__ANIMATOR": "still",
        "AVATARCAST_FLEET__CAPACITY": str(capacity),
        "AVATARCAST_FLEET__POLL_S": "0.3",
        "AVATARCAST_FLEET__HEARTBEAT_S": "4",
        "AVATARCAST_FLEET__FENCE_S": "1.5",
    })


def _ready(st: dict[str, Any], owned: int) -> bool:
    chans = st.get("channels", {})
    return len(st.get("owned", [])) == owned and all(
        chans[c].get("speech_ready") and chans[c].get("broker_connected") for c in st["owned"])


def _channels_file(tmp_path: Path, rtmp: NginxRtmp, ids: str) -> dict[str, str]:
    urls = {cid: rtmp.url(f"fleet-{cid}") for cid in ids}
    write_channels(tmp_path / "channels.toml", urls)
    return urls


def _finished_once(tap: EventTap, ids: list[str]) -> None:
    tap.wait_for(lambda evs: {e["id"] for e in evs if e["event"] == "finished"} >= set(ids),
                 90, f"{ids} finished")
    time.sleep(1.0)  # a second airing would follow within this
    for msg_id in ids:
        assert [e["event"] for e in tap.of(msg_id)].count("finished") == 1, tap.of(msg_id)


def _publishes(rtmp: NginxRtmp, key: str, **args: str) -> list[str]:
    """The clients that began publishing stream `key` (to a URL with query `args`), in order."""
    return [n.client for n in rtmp.notices if n.call == "publish" and n.name == key
            and args.items() <= n.args.items()]


def test_a_killed_owner_is_replaced_with_its_backlog(
    tmp_path: Path, queues: QueueNames, watched_rtmp: NginxRtmp
) -> None:
    rtmp_server = watched_rtmp
    urls = _channels_file(tmp_path, rtmp_server, "ab")
    w1 = _worker(tmp_path, "w1", queues, 1)
    workers = [w1]
    try:
        with EventTap(queues.events) as tap:
            st1 = w1.wait_for(lambda s: _ready(s, 1), 60, "w1 runs one channel")
            w2 = _worker(tmp_path, "w2", queues, 1)
            workers.append(w2)
            st2 = w2.wait_for(lambda s: _ready(s, 1), 60, "w2 runs the other")
            (mine,), (other,) = st1["owned"], st2["owned"]
            assert {mine, other} == {"a", "b"}
            w3 = _worker(tmp_path, "w3", queues, 2)
            workers.append(w3)
            st3 = w3.wait_for(lambda s: s.get("leases_connected"), 60, "w3 stands by")
            time.sleep(2.0)
            assert w3.status()["owned"] == []  # type: ignore[index]
            assert st3["channels"][mine]["state"] == "elsewhere"

            q = queues.channel(mine)
            for i, text in enumerate([LONG, "The second message.", "The third message."]):
                publish(q.speak, {"type": "speak", "id": f"m{i + 1}", "text": text})
            w1.wait_for(lambda s: s["channels"][mine].get("on_air") == "m1", 60, "m1 on air")
            w1.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            w1.proc.wait()
            viewer = Receiver(urls[mine], tmp_path / "after.flv", idle_timeout_s=20)
            st = w3.wait_for(lambda s: s["owned"] == [mine] and s["channels"][mine].get(
                "encoder_alive"), 60, "w3 took the channel")
            print(f"\nfailover: owner killed -> standby's encoder up in "
                  f"{time.monotonic() - killed:.2f} s")
            _finished_once(tap, ["m1", "m2", "m3"])
            st = w3.status()
            assert st is not None
            assert [r["id"] for r in st["channels"][mine]["recent"]] == ["m1", "m2", "m3"]
            assert {r["outcome"] for r in st["channels"][mine]["recent"]} == {"aired"}
            st2 = w2.status()
            assert st2 is not None and st2["owned"] == [other]
            # The other channel went on untouched: its encoder never restarted, and at the
            # server its stream was published once, by the publisher still on air (a new
            # encoder or relay would publish again). Whether its pacer kept up with three
            # daemons on two cores is this machine's speed, not failover's business.
            assert st2["channels"][other]["encoder_restarts"] == 0
            assert _publishes(rtmp_server, f"fleet-{other}") == \
                rtmp_server.publishers(f"fleet-{other}")
            assert len(rtmp_server.publishers(f"fleet-{other}")) == 1
        for w in workers[1:]:
            assert w.stop() == 0
        viewer.finish()
        assert depth(q.speak) == 0 and depth(q.dead) == 0
        assert len(packets(tmp_path / "after.flv", "v")) > 30  # back on air at the client
    finally:
        for w in workers:
            w.kill()
        for cid in "ab":
            delete_queues(queues.channel(cid))


def test_a_stopped_worker_finishes_what_is_on_air_and_hands_the_rest_over(
    tmp_path: Path, queues: QueueNames, watched_rtmp: NginxRtmp
) -> None:
    """A rolling restart: SIGTERM to the owner finishes the text on air (its lease held
    meanwhile), requeues the rest and exits well within the grace period; the standby airs the
    rest, each text once."""
    grace_s = 30.0
    _channels_file(tmp_path, watched_rtmp, "a")
    env = {"AVATARCAST_SHUTDOWN__GRACE_S": str(grace_s)}
    w1 = _worker(tmp_path, "w1", queues, 1, **env)
    w2: DaemonProc | None = None
    try:
        with EventTap(queues.events) as tap:
            w1.wait_for(lambda s: _ready(s, 1), 60, "w1 runs the channel")
            w2 = _worker(tmp_path, "w2", queues, 1, **env)
            w2.wait_for(lambda s: s.get("leases_connected"), 60, "w2 stands by")
            q = queues.channel("a")
            for i, text in enumerate([LONG, "The second message.", "The third message."]):
                publish(q.speak, {"type": "speak", "id": f"s{i + 1}", "text": text})
            w1.wait_for(lambda s: s["channels"]["a"].get("on_air") == "s1", 60, "s1 on air")
            asked = time.monotonic()
            code = w1.stop(timeout=grace_s + 30)
            took = time.monotonic() - asked
            log1 = w1.log()
            assert code == 0, log1[-3000:]
            assert "grace period" not in log1 and "pacer stopped" not in log1, log1[-3000:]
            assert took < grace_s, f"{took:.1f} s"
            assert "settled s1: aired" in log1, log1[-3000:]
            w2.wait_for(lambda s: s["owned"] == ["a"], 60, "w2 took the channel")
            _finished_once(tap, ["s1", "s2", "s3"])
        assert "queued s1 " not in w2.log()  # (acked by w1: never delivered again)
        assert w2.stop() == 0
        assert depth(q.speak) == 0 and depth(q.dead) == 0
    finally:
        w1.kill()
        if w2 is not None:
            w2.kill()
        delete_queues(queues.channel("a"))


def test_a_frozen_owner_gives_way_and_never_publishes_again(
    tmp_path: Path, queues: QueueNames, watched_rtmp: NginxRtmp
) -> None:
    rtmp = watched_rtmp
    # Each worker's copy of the channels file names the same channel and stream, its URL marked
    # with the worker's name (a query nginx-rtmp hands to on_publish): the server tells who
    # publishes.
    for name in ("w1", "w2"):
        write_channels(tmp_path / f"{name}.toml", {"a": rtmp.url(f"fleet-a?by={name}")})
    w1 = _worker(tmp_path, "w1", queues, 1, "w1.toml")
    w2: DaemonProc | None = None
    try:
        with EventTap(queues.events) as tap:
            w1.wait_for(lambda s: _ready(s, 1), 60, "w1 runs the channel")
            w1.wait_for(lambda s: rtmp.publishers("fleet-a") == _publishes(rtmp, "fleet-a",
                                                                           by="w1"),
                        30, "the server sees w1 publish")
            w2 = _worker(tmp_path, "w2", queues, 1, "w2.toml")
            w2.wait_for(lambda s: s.get("leases_connected"), 60, "w2 stands by")
            assert w2.status()["owned"] == []  # type: ignore[index]
            os.kill(w1.proc.pid, signal.SIGSTOP)  # a frozen machine: no FIN, no RST
            frozen = time.monotonic()
            try:
                publish(queues.channel("a").speak, {"type": "speak", "id": "f1",
                                                     "text": "Said while the owner sleeps."})
                w2.wait_for(lambda s: s["owned"] == ["a"] and _ready(s, 1), 60, "w2 took over")
                _finished_once(tap, ["f1"])
            finally:
                os.kill(w1.proc.pid, signal.SIGCONT)
            # Awake again: it must notice it lost the channel, and not publish any more.
            st1 = w1.wait_for(lambda s: s.get("owned") == [], 30, "w1 let go")
            assert st1["channels"]["a"]["state"] == "elsewhere"
            # For three seconds, the server sees one publisher of the stream: the new owner;
            # and the broker one consumer of the channel's texts and controls: the new owner
            # (the woken worker's connections came back, its consumers did not).
            until = time.monotonic() + 3.0
            while time.monotonic() < until:
                now = rtmp.publishers("fleet-a")
                assert now == _publishes(rtmp, "fleet-a", by="w2")[-1:], (now, rtmp.notices)
                q = queues.channel("a")
                assert (consumers(q.speak), consumers(q.control)) == (1, 1)
                time.sleep(0.2)
            st2 = w2.status()
            assert st2 is not None and st2["owned"] == ["a"]
            assert st2["channels"]["a"]["encoder_alive"]
            assert [e["event"] for e in tap.of("f1")].count("finished") == 1
        # The old owner never tried to publish again (nginx-rtmp tells every publish, the
        # ones it refuses included), not even its encoder's children while it slept.
        assert [n for n in rtmp.notices if n.call == "publish" and n.args.get("by") == "w1"
                and n.at > frozen] == []
        assert "off air" in w1.log() or "lost the broker" in w1.log()
        assert w1.stop() == 0 and w2.stop() == 0
    finally:
        w1.kill()
        if w2 is not None:
            w2.kill()
        delete_queues(queues.channel("a"))


@pytest.mark.parametrize("ledger", ["auto", "off"])
def test_an_ack_lost_with_its_owner_is_not_aired_again_by_the_next(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp, ledger: str,
) -> None:
    """The owner airs a text and acks it, but the ack never reaches the broker (an AMQP relay
    in between swallows it), and the owner is killed. The broker gives the message to the
    standby that takes the channel over: the fleet's ledger tells it the text aired, and it
    acks it unaired. Without the ledger (`off`, as before it existed) it airs a second time:
    the window the README used to admit."""
    _channels_file(tmp_path, rtmp_server, "a")
    q = queues.channel("a")
    relay = AmqpRelay()
    relay.start()
    via_relay = f"amqp://guest:guest@127.0.0.1:{relay.port}/"
    w1 = _worker(tmp_path, "w1", queues, 1, AVATARCAST_BROKER__URL=via_relay,
                 AVATARCAST_BROKER__LEDGER=ledger)
    w2: DaemonProc | None = None
    try:
        with EventTap(queues.events) as tap:
            w1.wait_for(lambda s: _ready(s, 1), 60, "w1 runs the channel")
            w2 = _worker(tmp_path, "w2", queues, 1, AVATARCAST_BROKER__LEDGER=ledger)
            w2.wait_for(lambda s: s.get("leases_connected"), 60, "w2 stands by")
            relay.drop_acks = True
            publish(q.speak, {"type": "speak", "id": "k1", "text": "Aired once; its ack lost."})
            tap.wait_for(lambda evs: any(e.get("id") == "k1" and e["event"] == "finished"
                                         for e in evs), 60, "k1 finished")
            time.sleep(0.5)  # (the ack went out right before `finished`)
            assert relay.dropped >= 1
            w1.proc.send_signal(signal.SIGKILL)
            w1.proc.wait()
            w2.wait_for(lambda s: s["owned"] == ["a"] and _ready(s, 1), 60, "w2 took over")
            if ledger == "auto":
                tap.wait_for(lambda evs: any(e.get("id") == "k1" and e["event"] == "duplicate"
                                             for e in evs), 60, "k1 known as handled")
                time.sleep(1.0)  # a second airing would have started
                assert [e["event"] for e in tap.of("k1")].count("finished") == 1, tap.of("k1")
                assert "from the ledger" in w2.log()
            else:
                tap.wait_for(lambda evs: [e["event"] for e in evs if e.get("id") == "k1"].count(
                    "finished") == 2, 60, "k1 aired again")
        assert w2.stop() == 0
        assert depth(q.speak) == 0 and depth(q.dead) == 0
    finally:
        relay.stop()
        w1.kill()
        if w2 is not None:
            w2.kill()
        delete_queues(q)


def test_a_broker_restart_loses_nothing_and_airs_nothing_twice(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp
) -> None:
    """Every worker loses the broker at once: the owner goes off air (it can no longer prove
    it owns the channel), and when the broker is back one worker, never two, takes the channel
    and airs the backlog, the message cut on air included, each message once."""
    urls = _channels_file(tmp_path, rtmp_server, "a")
    w1 = _worker(tmp_path, "w1", queues, 1)
    workers = [w1]
    ids = ["r1", "r2", "r3"]
    q = queues.channel("a")
    try:
        w1.wait_for(lambda s: _ready(s, 1), 60, "w1 runs the channel")
        w2 = _worker(tmp_path, "w2", queues, 1)
        workers.append(w2)
        w2.wait_for(lambda s: s.get("leases_connected"), 60, "w2 stands by")
        for i, text in zip(ids, [LONG, "The second message.", "The third message."],
                           strict=True):
            publish(q.speak, {"type": "speak", "id": i, "text": text})
        w1.wait_for(lambda s: s["channels"]["a"].get("on_air") == "r1", 60, "r1 on air")
        rabbitmqctl("stop_app")
        try:
            for w in workers:
                w.wait_for(lambda s: s.get("owned") == [] and not s.get("leases_connected"),
                           30, "the channel let go while the broker is away")
            time.sleep(2.0)
        finally:
            rabbitmqctl("start_app")
            wait_port(5672, 60)
        owners: list[list[str]] = []
        deadline = time.monotonic() + 120
        while sorted(aired(*(w.log() for w in workers))) != ids:
            assert time.monotonic() < deadline, "\n".join(w.log() for w in workers)[-6000:]
            holding = [f"w{n}" for n, w in enumerate(workers, 1)
                       if "a" in ((w.status() or {}).get("owned") or [])]
            assert len(holding) <= 1, f"two owners at once: {holding}"
            owners.append(holding)
            time.sleep(0.2)
        (owner,) = {h[0] for h in owners if h}  # one owner took it, and kept it
        viewer = Receiver(urls["a"], tmp_path / "after.flv", idle_timeout_s=20)
        viewer.wait_receiving()
        for w in workers:
            assert w.stop() == 0
        viewer.finish()
        logs = [w.log() for w in workers]
        assert sorted(aired(*logs)) == ids, "\n".join(logs)[-6000:]
        assert "off air" in logs[0] or "lost the broker" in logs[0]
        assert depth(q.speak) == 0 and depth(q.dead) == 0
        assert len(packets(tmp_path / "after.flv", "v")) > 30  # back on air at the client
        print(f"\nbroker restart: the channel went back on air on {owner}")
    finally:
        for w in workers:
            w.kill()
        delete_queues(q)


def test_a_channel_that_keeps_failing_on_its_owner_goes_where_it_can_air(
    tmp_path: Path, queues: QueueNames, rtmp_server: NginxRtmp,
) -> None:
    """Worker `bad` lacks the channel's avatar (set for it alone); it once restarted the
    channel there forever, holding its lease, while `good` stood by. Now it hands the channel
    over after `fleet.give_up_after` failures in a row, and leaves it to `good`."""
    _channels_file(tmp_path, rtmp_server, "a")
    qa = queues.channel("a")
    bad = _worker(tmp_path, "bad", queues, 1, AVATARCAST_AVATAR__ID="nobody",
                  AVATARCAST_FLEET__GIVE_UP_AFTER="2")
    good: DaemonProc | None = None
    try:
        bad.wait_for(lambda s: s.get("owned") == ["a"], 60, "bad owns a")
        good = _worker(tmp_path, "good", queues, 1)
        good.wait_for(lambda s: _ready(s, 1), 90, "good runs a")
        publish(qa.speak, {"type": "speak", "id": "here", "text": "Airing where I can."})
        good.wait_for(lambda s: any(r["id"] == "here" and r["outcome"] == "aired"
                                         for r in s["channels"]["a"]["recent"]), 60, "aired")
        mine = bad.status()
        assert mine is not None and mine["owned"] == []
        assert "handed over" in (mine["channels"]["a"]["last_error"] or "")
        assert "avatar 'nobody'" in mine["channels"]["a"]["last_error"]
        assert good.stop() == 0 and bad.stop() == 0
    finally:
        bad.kill()
        if good is not None:
            good.kill()
        delete_queues(qa)
    assert bad.log().count("restarting it in") == 1  # failed twice, then handed over
