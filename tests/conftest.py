from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cluster import RabbitCluster
from harness.daemon import QueueNames, delete_queues
from harness.services import NginxRtmp, ensure_rabbitmq


@pytest.fixture(scope="session")
def rabbitmq() -> None:
    ensure_rabbitmq()


@pytest.fixture
def queues(rabbitmq: None) -> Iterator[QueueNames]:
    q = QueueNames.unique()
    yield q
    delete_queues(q)


@pytest.fixture
def rtmp_server(tmp_path: Path) -> Iterator[NginxRtmp]:
    server = NginxRtmp(tmp_path / "nginx")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def talking_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A talking reference made here: the portrait reading four Harvard sentences."""
    from harness.talking import make_talking_video

    return make_talking_video(tmp_path_factory.mktemp("talking") / "talk.mp4", sentences=4)


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """Three clustered RabbitMQ nodes beside the default one (harness/cluster.py), started
    once, when a test first asks. Their files live outside pytest's basetemp, which pytest
    makes 0700 again (cutting off the `rabbitmq` user) whenever a pytest session starts."""
    cluster = RabbitCluster(Path(tempfile.gettempdir()) / "avatarcast-rabbit-cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def cluster(rabbit_cluster: RabbitCluster) -> Iterator[RabbitCluster]:
    """The cluster, whole again after the test whatever the test did to it."""
    yield rabbit_cluster
    rabbit_cluster.heal()
    assert sorted(rabbit_cluster.running()) == sorted(rabbit_cluster.nodes)
