"""Whether the WebRTC view is on, and the view itself: aiortc is imported only here, and only
when the settings ask for the view, so a daemon without it still runs."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ...settings import Settings
from ..console.access import guarded

if TYPE_CHECKING:
    from .whep import Whep

log = logging.getLogger(__name__)


def open_whep(settings: Settings, loop: asyncio.AbstractEventLoop,
              where: str = "/") -> Whep | None:
    """The WebRTC view, or None (and a line that says why) when it is off."""
    w = settings.webrtc
    if not w.enabled:
        return None
    serve, token = guarded(settings.health, "WebRTC view")
    if not serve:
        return None
    try:
        from .whep import Whep
    except ImportError as exc:
        log.warning("WebRTC view off: %s is not installed (pip install -r requirements.txt, "
                    "or set AVATARCAST_WEBRTC__ENABLED=false)", exc.name)
        return None
    view = Whep(settings=w, stream_fps=settings.video.fps,
                sample_rate=settings.audio.sample_rate, token=token, loop=loop)
    log.info("WebRTC view (WHEP) at %swhep on the HTTP port, %d px at %d fps, %d viewers at "
             "most%s", where, min(w.width, settings.video.width), settings.video.fps // view.every,
             w.max_viewers, " (token required)" if token else "")
    return view
