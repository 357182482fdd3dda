"""broker/connection.py against the real RabbitMQ: a connection carries its name and heartbeat to
the broker; a wrong password, a closed port and a silent server each fail (a robust connection's
first attempt too) with one clear error that never holds the password; and a robust connection
the broker closed comes back by itself, under the same name.

The tests connect as a user of their own, so that closing "all its connections" touches nothing
else on a broker other tests share."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aio_pika.abc import AbstractConnection

from avatarcast.broker.connection import connect, connect_robust
from avatarcast.broker.failures import BROKER_ERRORS, describe, is_refusal
from avatarcast.settings import BrokerSettings
from harness.services import free_port, rabbitmqctl

pytestmark = pytest.mark.services

Connect = Callable[[BrokerSettings], Awaitable[AbstractConnection]]
# Each way to connect, as its callers use it, with the bounds the tests allow it.
WAYS: dict[str, Connect] = {
    "plain": lambda s: connect(s, name="avatarcast-test", connect_timeout_s=10),
    "robust": lambda s: connect_robust(s, name="avatarcast-test", reconnect_interval_s=0.5),
}


@dataclass
class User:
    name: str
    password: str

    def broker(self, *, password: str | None = None, port: int = 5672) -> BrokerSettings:
        """Settings that log in as this user (or with another password) at 127.0.0.1:port."""
        url = f"amqp://{self.name}:{password or self.password}@127.0.0.1:{port}/"
        return BrokerSettings.model_validate({"url": url})


@pytest.fixture(scope="module")
def user(rabbitmq: None) -> Iterator[User]:
    made = User(f"avatarcast-conn-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}")
    rabbitmqctl("add_user", made.name, made.password)
    try:
        rabbitmqctl("set_permissions", "-p", "/", made.name, ".*", ".*", ".*")
        yield made
    finally:
        rabbitmqctl("delete_user", made.name)


def connections_of(user: str, count: int) -> list[tuple[str | None, int]]:
    """(connection name, heartbeat in s) of each of the user's connections, as RabbitMQ lists
    them, once it lists `count` of them (it may take a moment to register one)."""
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(
            ["rabbitmqctl", "-q", "list_connections", "--formatter", "json", "user",
             "client_properties", "timeout"],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout
        rows: list[dict[str, Any]] = [r for r in json.loads(out or "[]") if r["user"] == user]
        if len(rows) >= count or time.monotonic() > deadline:
            return [({p[0]: p[2] for p in r["client_properties"]}.get("connection_name"),
                     int(r["timeout"])) for r in rows]
        time.sleep(0.5)


def test_a_connection_shows_its_name_and_heartbeat_on_the_broker(
    user: User,
) -> None:
    s = user.broker()

    async def run() -> list[tuple[str | None, int]]:
        conns = [
            await connect(s, name="avatarcast-test plain", heartbeat_s=7, connect_timeout_s=10),
            await connect_robust(s, name="avatarcast-test robust", heartbeat_s=9,
                                 reconnect_interval_s=0.5),
            await connect(s, name=None),
        ]
        try:
            return await asyncio.to_thread(connections_of, user.name, len(conns))
        finally:
            for conn in conns:
                await conn.close()

    seen = asyncio.run(run())
    assert ("avatarcast-test plain", 7) in seen and ("avatarcast-test robust", 9) in seen, seen
    assert [n for n, _ in seen].count(None) == 1, seen  # unnamed: the broker shows no name


@pytest.mark.parametrize("way", WAYS)
def test_a_wrong_password_is_refused_and_never_shown(
    way: str, user: User, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(BROKER_ERRORS) as info:
        asyncio.run(asyncio.wait_for(WAYS[way](user.broker(password=wrong)), 60))
    assert is_refusal(info.value)
    assert "refused the login" in describe(info.value)
    for text in (describe(info.value), str(info.value), repr(info.value), caplog.text):
        assert wrong not in text


@pytest.mark.parametrize("way", WAYS)
def test_a_closed_port_fails_and_says_where(
    way: str, user: User, caplog: pytest.LogCaptureFixture,
) -> None:
    """A robust connection's first attempt fails too (the consumer's and events' retry loops and
    `say`'s exit 3 rely on it), instead of retrying in the background."""
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there
    with pytest.raises(BROKER_ERRORS) as info:
        asyncio.run(asyncio.wait_for(WAYS[way](user.broker(port=port)), 60))
    assert not is_refusal(info.value)
    assert "Connect call failed" in describe(info.value) and str(port) in describe(info.value)
    for text in (describe(info.value), repr(info.value), caplog.text):
        assert user.password not in text


def test_a_server_that_never_answers_fails_within_the_connect_timeout(
    user: User,
) -> None:
    with socket.socket() as silent:  # accepts the TCP connection, never speaks AMQP
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        s = user.broker(port=silent.getsockname()[1])
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            asyncio.run(asyncio.wait_for(connect(s, name="avatarcast-test", connect_timeout_s=1),
                                         60))
        took = time.monotonic() - started
    assert took < 30, took  # the connect timeout ended it, not the test's own bound
    assert isinstance(info.value, BROKER_ERRORS) and not is_refusal(info.value)
    assert user.password not in describe(info.value)


def test_a_robust_connection_comes_back_after_the_broker_closed_it(
    user: User,
) -> None:
    s = user.broker()

    async def run() -> list[tuple[str | None, int]]:
        conn = await connect_robust(s, name="avatarcast-test comeback", heartbeat_s=11,
                                    reconnect_interval_s=0.2)
        back = asyncio.Event()
        conn.reconnect_callbacks.add(lambda *_: back.set())
        try:
            channel = await conn.channel()
            await asyncio.to_thread(rabbitmqctl, "close_all_user_connections",
                                    user.name, "test")
            async with asyncio.timeout(60):
                await back.wait()
                await conn.connected.wait()
                # The channel was restored with the connection: it works.
                queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
                await queue.delete()
            return await asyncio.to_thread(connections_of, user.name, 1)
        finally:
            await conn.close()

    assert asyncio.run(run()) == [("avatarcast-test comeback", 11)]
