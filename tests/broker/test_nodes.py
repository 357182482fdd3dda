"""broker/nodes.py and the rotation over a cluster's nodes in broker/connection.py: the ways
the settings name nodes, and connections that go on to the next node when one does not answer
or is lost, against the real RabbitMQ (the lost "node" is a TCP relay to it that the test
stops, so that the broker itself stays up for the other tests)."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid

import aio_pika
import pytest
from pydantic import ValidationError

from avatarcast.broker.connection import connect, connect_robust
from avatarcast.broker.nodes import NodeUrlError, Rotation, host_of, node_urls, split_hosts
from avatarcast.settings import BrokerSettings, describe_validation_error
from harness.node_relay import relay
from harness.services import free_port

PASSWORD = "n0des-s3cret-pw"


def test_one_url_with_several_hosts_is_one_url_per_node() -> None:
    url = f"amqps://u:{PASSWORD}@r1:5671,r2,r3:7000/vh?heartbeat=5"
    assert split_hosts(url) == [f"amqps://u:{PASSWORD}@r1:5671/vh?heartbeat=5",
                                f"amqps://u:{PASSWORD}@r2/vh?heartbeat=5",
                                f"amqps://u:{PASSWORD}@r3:7000/vh?heartbeat=5"]
    assert [host_of(u) for u in split_hosts(url)] == ["r1:5671", "r2:5671", "r3:7000"]
    assert split_hosts("amqp://h/") == ["amqp://h/"]
    with pytest.raises(NodeUrlError):
        split_hosts("amqp://u:p@a,,b/")


def test_urls_replace_url_and_may_list_hosts_too() -> None:
    s = BrokerSettings.model_validate({"url": "amqp://x:y@ignored/",
                                       "urls": ["amqp://a:b@n1/", "amqp://a:b@n2,n3:1/"]})
    assert node_urls(s) == ["amqp://a:b@n1/", "amqp://a:b@n2/", "amqp://a:b@n3:1/"]
    assert node_urls(BrokerSettings()) == ["amqp://guest:guest@127.0.0.1:5672/"]


@pytest.mark.parametrize("bad", [f"amqp://u:{PASSWORD}@h:56x2/", f"amqp://u:{PASSWORD}@a,,b/",
                                 "http://h/", "amqp://u:n0des/s3cret-pw@h/"])
def test_a_url_no_node_can_be_reached_at_is_refused_without_its_password(bad: str) -> None:
    for field in ({"url": bad}, {"urls": ["amqp://ok/", bad]}):
        with pytest.raises(ValidationError) as info:
            BrokerSettings.model_validate(field)
        said = describe_validation_error(info.value)
        assert "amqp" in said or "URL" in said
        assert PASSWORD not in said and "n0des" not in said and "s3cret" not in said


def test_a_rotation_goes_round() -> None:
    r = Rotation(["a", "b", "c"])
    assert [r.current, r.advance(), r.advance(), r.advance()] == ["a", "b", "c", "a"]
    with pytest.raises(NodeUrlError):
        Rotation([])


def _settings(*ports: int) -> BrokerSettings:
    return BrokerSettings.model_validate(
        {"urls": [f"amqp://guest:guest@127.0.0.1:{p}/" for p in ports]})


@pytest.mark.services
@pytest.mark.parametrize("robust", [False, True])
def test_a_node_that_does_not_answer_is_passed_over(
    robust: bool, rabbitmq: None, caplog: pytest.LogCaptureFixture,
) -> None:
    dead = free_port()
    s = BrokerSettings.model_validate({"url": f"amqp://guest:guest@127.0.0.1:{dead},"
                                              "127.0.0.1:5672/"})

    async def run() -> str:
        conn = await (connect_robust(s, name="avatarcast-test nodes") if robust else
                      connect(s, name="avatarcast-test nodes", connect_timeout_s=5))
        async with conn:
            await (await conn.channel()).close()
            return str(conn)

    with caplog.at_level(logging.INFO, logger="avatarcast.broker.connection"):
        where = asyncio.run(asyncio.wait_for(run(), 60))
    assert "127.0.0.1:5672" in where
    assert f"broker node 127.0.0.1:{dead}: no connection" in caplog.text
    assert "guest:guest" not in caplog.text


@pytest.mark.services
def test_a_robust_connection_whose_node_is_lost_goes_on_to_the_next(
    rabbitmq: None, caplog: pytest.LogCaptureFixture,
) -> None:
    """Connected through the first node; that node is lost; the connection is back through
    the second, with its channel and consumer restored (a message still arrives)."""

    async def run() -> tuple[int, str]:
        async with relay() as node1:
            s = _settings(node1.port, 5672)
            conn = await connect_robust(s, name="avatarcast-test nodes", heartbeat_s=5,
                                        reconnect_interval_s=0.2)
            back = asyncio.Event()

            async def reconnected(*_: object) -> None:
                back.set()

            conn.reconnect_callbacks.add(reconnected)
            try:
                channel = await conn.channel()
                queue = await channel.declare_queue(f"avatarcast.test.nodes.{uuid.uuid4().hex}",
                                                    durable=True)
                got: asyncio.Queue[bytes] = asyncio.Queue()
                await queue.consume(lambda m: got.put_nowait(m.body), no_ack=True)
                node1.stop()
                async with asyncio.timeout(30):
                    await back.wait()
                    await conn.connected.wait()
                await channel.default_exchange.publish(aio_pika.Message(b"after"),
                                                       routing_key=queue.name)
                body = await asyncio.wait_for(got.get(), 30)
                assert body == b"after"
                await queue.delete(if_unused=False)
                return node1.accepted, str(conn)
            finally:
                await conn.close()

    with caplog.at_level(logging.INFO, logger="avatarcast.broker.connection"):
        accepted, where = asyncio.run(asyncio.wait_for(run(), 90))
    assert accepted == 1  # (the reconnect did not go back to the lost node)
    assert where.endswith("127.0.0.1:5672/?heartbeat=5&reconnect_interval=0.2"), where
    assert "connection lost; reconnecting to 127.0.0.1:5672" in caplog.text


@pytest.mark.services
@pytest.mark.parametrize("robust", [False, True])
def test_a_node_that_hangs_is_left_after_the_connect_timeout(
    robust: bool, rabbitmq: None,
) -> None:
    """The first node accepts the TCP connection and never speaks AMQP (a hung broker): the
    connection gives up on it after its timeout and is made on the next node."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        s = _settings(silent.getsockname()[1], 5672)

        async def run() -> str:
            conn = await (connect_robust(s, name="avatarcast-test nodes", connect_timeout_s=1)
                          if robust else
                          connect(s, name="avatarcast-test nodes", connect_timeout_s=1))
            async with conn:
                return str(conn)

        # (without a connect timeout the hung node is never left: the test's bound ends it)
        where = asyncio.run(asyncio.wait_for(run(), 60))
    assert "127.0.0.1:5672" in where
