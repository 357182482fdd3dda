"""The person in each picture of an avatar's cycle, kept in its cache (`person.npz`): the
segmentation model's answer (avatar/segment.py) at the model's own size, one a frame, with the
models' fingerprint. `prepare` makes it with the rest of the cache; a cache made before it had
one gets it the first time a background is put behind that avatar. Either way the model runs
once an avatar, not at every load or background switch; what a load does with it (bring it to
the output's size, a soft edge) takes a few milliseconds a frame."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import cache
from .segment import SegmentationError, Segmenter, answer, fingerprint

log = logging.getLogger(__name__)

PERSON_FILE = "person.npz"

Answers = npt.NDArray[np.uint8]  # (N, mh, mw): 0-255 for a chance of 0-1


def answers(frames: list[npt.NDArray[np.uint8]]) -> Answers:
    """The model's answer on each RGB frame. Blocking: a few tens of ms a frame."""
    segment = Segmenter()
    return np.stack([answer(segment.probability(rgb)) for rgb in frames])


def arrays(found: Answers, made: str) -> dict[str, Any]:
    """What the cache file holds: the answers, the models that gave them, and when the
    frames they answer were made (the manifest's `created`)."""
    return {"prob": found, "models": np.array(fingerprint()), "made": np.array(made)}


def made(directory: Path) -> str:
    """When the cache's frames were made, as its manifest says ("" when it cannot be read)."""
    return str((cache.read_manifest(directory) or {}).get("created", ""))


def read(directory: Path, count: int) -> Answers | None:
    """The cached answers, or None when there are none, or they are for other frames (another
    build of the avatar) or from other models, or the file is damaged: they are made again."""
    path = directory / PERSON_FILE
    try:
        with np.load(path) as data:
            prob, models, when = data["prob"], str(data["models"]), str(data["made"])
        current = fingerprint()
    except FileNotFoundError:
        return None
    except SegmentationError as exc:  # (no model here: nothing to compare them with)
        log.warning("avatar cache %s: the person's masks are not used: %s", directory.name, exc)
        return None
    except Exception as exc:  # a torn or foreign file (zip, pickle or key errors)
        log.warning("avatar cache %s: %s unreadable (%s); made again", directory.name,
                    PERSON_FILE, exc)
        return None
    if len(prob) != count or prob.dtype != np.uint8 or models != current or \
            when != made(directory):
        return None
    return np.asarray(prob, np.uint8)


def ensure(directory: Path, count: int) -> Answers:
    """The cached answers, made from the cached frames and kept when missing or stale. A
    cache that cannot be written to (prepared elsewhere, read-only) keeps nothing: the answers
    are made again at the next load; nor does one prepared again meanwhile. Blocking."""
    found = read(directory, count)
    if found is not None:
        return found
    t = time.monotonic()
    when = made(directory)
    found = answers(cache.read_frames(directory, count))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{PERSON_FILE}.", dir=directory)
    except OSError as exc:
        log.warning("avatar cache %s: cannot keep the person's masks (%s); they are made "
                    "again at each load", directory.name, exc)
        return found
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays(found, when))
        if made(directory) != when:  # prepared again while these were made: not its masks
            raise OSError("the avatar was prepared again meanwhile")
        os.replace(tmp, directory / PERSON_FILE)  # two at once: either whole file wins
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        log.warning("avatar cache %s: the person's masks not kept (%s)", directory.name, exc)
        return found
    log.info("avatar %s: the person found in %d frame(s) in %.1f s, kept in its cache",
             directory.name, count, time.monotonic() - t)
    return found
