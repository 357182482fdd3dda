"""The WebRTC view's routes, apart from the view itself: a worker lays them out for every
channel without importing aiortc."""

from __future__ import annotations

from collections.abc import Sequence

from ..parts import Route

WHEP_ROUTES: Sequence[Route] = (
    ("POST", "/whep", "_post"),
    ("DELETE", "/whep/{id}", "_delete"),
    ("OPTIONS", "/whep", "_options"),
    ("OPTIONS", "/whep/{id}", "_options"),
)
