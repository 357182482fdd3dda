"""State files that survive a crash or a power cut: a whole file is replaced atomically, its
data and its new name on disk before the call returns."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: after a crash at any point, the file holds either the old
    content or the new one, never a mix or an empty file."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())  # the data is on disk before the name points at it
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)  # and the rename itself
    finally:
        os.close(fd)
