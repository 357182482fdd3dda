"""Log lines as people read them (text) or as log shippers read them (JSON lines), and the id
of the message and the channel a line is about.

The id comes from `message_id`, a context variable set where a message is handled (each
message's tasks run in their own context), or from `extra={"msg_id": ...}` on lines written
by threads that serve several messages (the pacer). In text, the id is in the message itself;
in JSON it is also the "id" field. The channel comes from `channel_id`, set in the context a
channel's daemon runs in (its tasks, and its threads: see threads.start_thread); in text it
leads the message as "[news-en]", in JSON it is the "channel" field.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time

message_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "message_id", default=None)
channel_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "channel_id", default=None)


class MessageIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "msg_id", None) is None:
            record.msg_id = message_id.get()
        channel = channel_id.get()
        record.channel = channel
        record.channel_tag = f"[{channel}] " if channel else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601, UTC), level, logger, message, id (when the
    line is about a message), exc (a traceback, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (msg_id := getattr(record, "msg_id", None)) is not None:
            out["id"] = msg_id
        if (channel := getattr(record, "channel", None)) is not None:
            out["channel"] = channel
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)
