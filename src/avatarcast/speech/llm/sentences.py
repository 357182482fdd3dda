"""Sentences out of a stream of text pieces, each as soon as it is complete: at the start of
the next one, or when the stream pauses after a sentence's end (a model thinking between
sentences: the sentence is spoken meanwhile, not when the next one begins)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator

# A sentence ends at . ! ? (or a line break) followed by white space; "e.g. this" and "3.5"
# are not ends (a lower-case letter or a digit follows).
_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[^a-z0-9])|\n+")
# The text so far ends as a sentence does, the next piece not seen yet.
_ENDS_HERE = re.compile(r"[.!?…][\"')\]]*\s*$")
MIN_CHARS = 12  # shorter pieces ("Hi." "Yes.") wait for the next sentence, unless it pauses
PAUSE_S = 0.3  # no piece for this long after a sentence's end: the sentence is complete


async def sentences(pieces: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
    """Closing this closes `pieces` too (an HTTP answer is not left open)."""
    buffer = ""
    nxt: asyncio.Future[str] | None = None
    try:
        while True:
            nxt = asyncio.ensure_future(anext(pieces))
            if _ENDS_HERE.search(buffer):
                done, _ = await asyncio.wait({nxt}, timeout=PAUSE_S)
                if not done and (head := buffer.strip()):
                    buffer = ""
                    yield head
            try:
                piece = await nxt
            except StopAsyncIteration:
                break
            finally:
                nxt = None
            buffer += piece
            while (cut := _first_end(buffer)) is not None:
                head, buffer = buffer[:cut].strip(), buffer[cut:].lstrip()
                if head:
                    yield head
    finally:
        if nxt is not None:  # closed while a piece was awaited
            nxt.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await nxt
        await pieces.aclose()
    if buffer.strip():
        yield buffer.strip()


def _first_end(text: str) -> int | None:
    for m in _END.finditer(text):
        if m.start() >= MIN_CHARS:
            return m.end()
    return None
