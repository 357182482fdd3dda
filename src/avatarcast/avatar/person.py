"""The person in each picture of an avatar's cycle, kept in its cache (`person.npz`): the
segmentation model's answer (avatar/segment.py) at the model's own size, one a frame, with the
models' fingerprint. `prepare` makes it with the rest of the cache; a cache made before it had
one gets it the first time a background is put behind that avatar. Either way the model runs
once an avatar, not at every load or background switch; what a load does with it (bring it to
the output's size, a soft edge) takes a few milliseconds a frame."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import cache
from .segment import Segmenter, answer, fingerprint

log = logging.getLogger(__name__)

PERSON_FILE = "person.npz"

Answers = npt.NDArray[np.uint8]  # (N, mh, mw): 0-255 for a chance of 0-1


def answers(frames: list[npt.NDArray[np.uint8]]) -> Answers:
    """The model's answer on each RGB frame. Blocking: a few tens of ms a frame."""
    segment = Segmenter()
    return np.stack([answer(segment.probability(rgb)) for rgb in frames])


def arrays(found: Answers) -> dict[str, Any]:
    """What the cache file holds: the answers, and the models that gave them."""
    return {"prob": found, "models": np.array(fingerprint())}


def read(directory: Path, count: int) -> Answers | None:
    """The cached answers, or None when there are none, or they are for another number of
    frames or from other models (the file is then made again)."""
    path = directory / PERSON_FILE
    try:
        with np.load(path) as data:
            prob, models = data["prob"], str(data["models"])
    except FileNotFoundError:
        return None
    except (OSError, KeyError, ValueError) as exc:
        log.warning("avatar cache %s: %s unreadable (%s); made again", directory.name,
                    PERSON_FILE, exc)
        return None
    if len(prob) != count or prob.dtype != np.uint8 or models != fingerprint():
        return None
    return np.asarray(prob, np.uint8)


def ensure(directory: Path, count: int) -> Answers:
    """The cached answers, made from the cached frames and kept when missing or stale. A
    cache that cannot be written to (prepared elsewhere, read-only) keeps nothing: the answers
    are made again at the next load. Blocking."""
    found = read(directory, count)
    if found is not None:
        return found
    t = time.monotonic()
    found = answers(cache.read_frames(directory, count))
    tmp = directory / f".{PERSON_FILE}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays(found))
        os.replace(tmp, directory / PERSON_FILE)  # two loads at once: either whole file wins
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.warning("avatar cache %s: cannot keep the person's masks (%s); they are made "
                    "again at each load", directory.name, exc)
    log.info("avatar %s: the person found in %d frame(s) in %.1f s, kept in its cache",
             directory.name, count, time.monotonic() - t)
    return found
