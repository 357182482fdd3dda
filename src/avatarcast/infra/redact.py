"""Keeps secrets (AMQP passwords, RTMP stream keys) out of every log line and error text."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

from .logfmt import JsonFormatter, MessageIdFilter

MASK = "***"
MIN_BARE_SECRET = 8
# rtmp://host[:port]/app/<key...>: everything after the application name is the key.
_RTMP = re.compile(r"(rtmps?://[^/\s'\"|\]]+/[^/\s'\"|\]]+/)([^\s'\"|\]]+)")
# srt://host:port?passphrase=...&streamid=...: the query may hold the passphrase.
_SRT_QUERY = re.compile(r"(srt://[^?\s'\"|\]]*\?)([^\s'\"|\]]+)", re.IGNORECASE)
# scheme://user:password@host
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s'\"]*:)([^@\s'\"]+)(@)", re.IGNORECASE)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: dict[str, str] = {}  # secret -> what stands in its place
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for s in secrets:
            if not s:
                continue
            self._secrets[s] = _patterns(s) if "://" in s else MASK
            # Bare keys and passwords are masked wherever they appear, unless they are so
            # short that they would mask ordinary words; in URLs the patterns mask them anyway.
            for part in (stream_key(s), _password(s)):
                if part and len(part) >= MIN_BARE_SECRET:
                    self._secrets[part] = MASK

    def __call__(self, text: str) -> str:
        for s in sorted(self._secrets, key=len, reverse=True):
            if s in text:
                text = text.replace(s, self._secrets[s])
        return _patterns(text)


def _patterns(text: str) -> str:
    text = _RTMP.sub(lambda m: m.group(1) + MASK, text)
    text = _SRT_QUERY.sub(lambda m: m.group(1) + MASK, text)
    return _USERINFO.sub(lambda m: m.group(1) + MASK + m.group(3), text)


def stream_key(url: str) -> str | None:
    m = _RTMP.search(url)
    return m.group(2) if m else None


def _password(url: str) -> str | None:
    m = _USERINFO.search(url)
    return m.group(2) if m else None


class RedactingFormatter(logging.Formatter):
    """Redacts the fully formatted record, so arguments and tracebacks are covered too."""

    def __init__(self, redactor: Redactor, inner: logging.Formatter) -> None:
        super().__init__()
        self.redactor = redactor
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(self.inner.format(record))


def secrets_of(value: Any) -> Iterator[str]:
    """Every secret a settings model holds, however deep (sections, lists, maps): each value
    typed SecretStr. A setting made a secret is redacted without being listed anywhere."""
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secrets_of(getattr(value, name))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from secrets_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secrets_of(item)


_REDACTOR = Redactor()


def global_redactor() -> Redactor:
    return _REDACTOR


def setup_logging(level: str, secrets: Iterable[str] = (), fmt: str = "text") -> None:
    """Text (the default) or JSON lines (`fmt="json"`), secrets redacted either way."""
    _REDACTOR.add(secrets)
    handler = logging.StreamHandler()
    inner = JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(channel_tag)s%(message)s")
    handler.setFormatter(RedactingFormatter(_REDACTOR, inner))
    handler.addFilter(MessageIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiormq", "aio_pika", "aiohttp.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
