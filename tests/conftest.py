from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
