"""The broker's nodes: one AMQP URL per RabbitMQ node of a cluster, and the order in which a
connection tries them.

The settings name the nodes as a list (`broker.urls`), or as one URL with several hosts
(`amqp://user:pass@rabbit1:5672,rabbit2:5672,rabbit3/vhost`, the form other AMQP clients
accept), or as one plain URL (a single node). Every connection of the process (consumer,
events, leases, publisher, the CLI) starts at the first node and, when a node does not answer
or a connection to it is lost, goes on with the next one, wrapping around: a node that died is
left at once, and one that returns is used again when the turn comes back to it.

Pure: no I/O, no logging. A `Rotation` belongs to one connection (its event loop).
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr


class NamesNodes(Protocol):
    """What names the nodes: BrokerSettings (which validates its URLs with split_hosts, so
    this module imports no settings)."""

    url: SecretStr
    urls: list[SecretStr]


class NodeUrlError(ValueError):
    """A URL names no host, or its hosts cannot be split."""


def split_hosts(url: str) -> list[str]:
    """`amqp://u:p@h1:1,h2:2/vh?q` → `[amqp://u:p@h1:1/vh?q, amqp://u:p@h2:2/vh?q]`; a URL
    with one host comes back as it is."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    names = [h.strip() for h in hosts.split(",")]
    if not all(names):
        raise NodeUrlError("an empty host in the URL's list of hosts")
    if len(names) == 1:
        return [url]
    return [urlunsplit(parts._replace(netloc=f"{userinfo}{at}{h}")) for h in names]


def node_urls(settings: NamesNodes) -> list[str]:
    """One URL per node, in the order the settings give them (secrets, handle as such)."""
    given = settings.urls or [settings.url]
    return [u for secret in given for u in split_hosts(secret.get_secret_value())]


def host_of(url: str) -> str:
    """The node's `host:port`, for a log line (never the credentials)."""
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    return f"{parts.hostname}:{port}"


class Rotation:
    """Where one connection is in the list of nodes: `current` until it fails, then the
    next."""

    def __init__(self, urls: list[str]) -> None:
        if not urls:
            raise NodeUrlError("no broker URL")
        self.urls = urls
        self._at = 0

    @property
    def current(self) -> str:
        return self.urls[self._at]

    def advance(self) -> str:
        """Move to the next node (the first after the last) and return it."""
        self._at = (self._at + 1) % len(self.urls)
        return self.current

    def __len__(self) -> int:
        return len(self.urls)
