"""Sentences out of a stream of text pieces, each as soon as it is complete."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from contextlib import aclosing

# A sentence ends at . ! ? (or a line break) followed by white space; "e.g. this" and "3.5"
# are not ends (a lower-case letter or a digit follows).
_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[^a-z0-9])|\n+")
MIN_CHARS = 12  # shorter pieces ("Hi." "Yes.") wait for the next sentence


async def sentences(pieces: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
    """Closing this closes `pieces` too (an HTTP answer is not left open)."""
    buffer = ""
    async with aclosing(pieces):
        async for piece in pieces:
            buffer += piece
            while (cut := _first_end(buffer)) is not None:
                head, buffer = buffer[:cut].strip(), buffer[cut:].lstrip()
                if head:
                    yield head
    if buffer.strip():
        yield buffer.strip()


def _first_end(text: str) -> int | None:
    for m in _END.finditer(text):
        if m.start() >= MIN_CHARS:
            return m.end()
    return None
