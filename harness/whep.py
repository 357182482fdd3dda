"""A WHEP viewer in headless Chromium (Playwright with Debian's chromium), for the WebRTC view's
test and bench: whep_client.js does the exchange and keeps the sound's RMS with the wall time."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# No user gesture in a headless test: let the <video> and the AudioContext play.
CHROMIUM_ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
_CLIENT = (Path(__file__).parent / "whep_client.js").read_text()


class WhepViewer:
    """One viewer in its own page; `page` is a Playwright page on the daemon's HTTP origin."""

    def __init__(self, page: Any, base: str, token: str | None = None) -> None:
        self.page = page
        page.goto(base + "/healthz")  # any page of that origin: /whep is same-origin then
        page.add_script_tag(content=_CLIENT)
        self._token = token

    def start(self, path: str = "/whep") -> dict[str, Any]:
        return dict(self.page.evaluate("([u, t]) => whepStart(u, t)", [path, self._token]))

    def stats(self) -> dict[str, Any]:
        return dict(self.page.evaluate("whepStats()"))

    def wait(self, pred: Callable[[dict[str, Any]], bool], timeout_s: float,
             what: str) -> dict[str, Any]:
        """The stats, once `pred` holds for them."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.stats()
            with contextlib.suppress(KeyError, TypeError):
                if pred(stats):
                    return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; stats {stats}")
            self.page.wait_for_timeout(200)

    def levels(self, since: float = 0.0) -> np.ndarray:
        """(wall time, RMS) rows of the received sound, every 20 ms."""
        rows = self.page.evaluate("(t) => whepLevels(t)", since)
        return np.array(rows, dtype=np.float64).reshape(-1, 2)

    def stop(self) -> int:
        return int(self.page.evaluate("whepStop()"))


def rms_between(levels: np.ndarray, t0: float, t1: float) -> float:
    """The received sound's RMS over [t0, t1) of wall time."""
    part = levels[(levels[:, 0] >= t0) & (levels[:, 0] < t1), 1]
    return float(np.sqrt(np.mean(part**2))) if part.size else 0.0
