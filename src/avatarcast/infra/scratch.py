"""Working buffers kept from one frame to the next.

In the daemon every block over 256 KiB is an mmap of its own, unmapped when freed
(infra/malloc.py): a frame-sized temporary made anew on every frame costs its page faults
every time, which on the frame path cost more than the arithmetic done in it. Code that works
on every frame writes its large temporaries into a Scratch instead."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt


class Scratch:
    """Buffers by name, each reused while its shape and type stay; owned by one thread."""

    def __init__(self) -> None:
        self._kept: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...],
            dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        """A buffer of `shape` and `dtype`, its content undefined."""
        buf = self._kept.get(name)
        if buf is None or buf.shape != shape or buf.dtype != np.dtype(dtype):
            buf = self._kept[name] = np.empty(shape, dtype)
        return buf


_local = threading.local()


def thread_scratch() -> Scratch:
    """The calling thread's own Scratch (freed with the thread)."""
    s: Scratch | None = getattr(_local, "scratch", None)
    if s is None:
        s = _local.scratch = Scratch()
    return s
