"""Bodies over a bound are never held whole: a channel whose deliveries are read frame by frame
and, past the bound, only a prefix kept.

aiormq reads a delivery's content header (which says the body's size) before its body frames,
then joins every frame into one bytes object before anyone sees it: a 100 MB body (RabbitMQ
takes up to 128 MiB by default) is 100 MB in the consumer, times the prefetch. Here a body over
`limit` is read and dropped frame by frame (each at most the connection's frame_max, 128 KiB by
default; aiormq buffers at most 10 frames per channel), keeping its first KEPT_PREFIX bytes, and
its size put into the BODY_SIZE_HEADER header, which the consumer reads to refuse it. A
publisher's own header of that name is removed, so the header is always this module's word.
"""

from __future__ import annotations

from typing import Any

import aiormq
from aio_pika import RobustChannel
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from .messages import MAX_BODY_BYTES

BODY_SIZE_HEADER = "x-avatarcast-body-bytes"
# What the dead letter of a body over the limit keeps of it: enough to recognise it.
KEPT_PREFIX = 1024


def bound_bodies(channel: aiormq.Channel, limit: int) -> None:
    """From now on, a delivery on `channel` (an open aiormq channel) with a body over `limit`
    bytes arrives with only its prefix, and its size in BODY_SIZE_HEADER."""
    whole = channel._read_content  # aiormq's own: reads the body whole

    async def read(frame: Any, header: ContentHeader) -> DeliveredMessage:
        if not isinstance(frame, spec.Basic.Deliver):
            return await whole(frame, header)
        headers = dict(header.properties.headers or {})
        size = header.body_size or 0
        if headers.pop(BODY_SIZE_HEADER, None) is not None or size > limit:
            header.properties.headers = headers
        if size <= limit:
            return await whole(frame, header)
        kept, left = b"", size
        while left > 0:
            content = await channel._get_frame()
            if not isinstance(content, ContentBody):
                raise ValueError(f"Unexpected frame {content!r}", content)  # as aiormq does
            left -= len(content.value)
            if len(kept) < KEPT_PREFIX:
                kept += content.value[:KEPT_PREFIX - len(kept)]
        headers[BODY_SIZE_HEADER] = size
        return DeliveredMessage(delivery=frame, header=header, body=kept, channel=channel)

    channel._read_content = read  # type: ignore[method-assign]


def body_size(headers: dict[str, Any] | None, body: bytes) -> int:
    """The size the body had on the wire (only its prefix is here when it was over the
    bound)."""
    size = (headers or {}).get(BODY_SIZE_HEADER)
    return size if isinstance(size, int) and size > len(body) else len(body)


class BoundedChannel(RobustChannel):
    """A robust channel whose every AMQP channel (the first, and each one after a reconnect)
    is bounded before its consumers start: a body over MAX_BODY_BYTES is never held whole."""

    async def _on_open(self) -> None:
        underlay = await self.get_underlay_channel()
        assert isinstance(underlay, aiormq.Channel)
        bound_bodies(underlay, MAX_BODY_BYTES)
        await super()._on_open()  # restores the consumers: deliveries start after this
