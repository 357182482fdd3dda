"""What the daemon airs as its avatar: a prepared avatar (checked, rebuilt when stale), or the
plain idle source when the animator needs no face."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..media.idle import load_idle
from ..settings import AliveSettings, AvatarSettings, VideoSettings
from .cache import BuildSettings
from .runtime import Avatar, for_output
from .source import is_image

if TYPE_CHECKING:
    from .prepare import PreparedAvatar


def alive_for(alive: AliveSettings, still: bool) -> bool:
    """Is the motion drawn on this avatar? `auto`: on a still image only (a video has its
    own)."""
    return alive.enabled == "on" or (alive.enabled == "auto" and still)


def _still(prepared: PreparedAvatar) -> bool:
    return len(prepared.frames) == 1


def build_settings(avatar: AvatarSettings, video: VideoSettings) -> BuildSettings:
    return BuildSettings(fps=video.fps, max_frames=avatar.max_idle_frames,
                         max_side=avatar.max_side, framing=avatar.framing,
                         aspect=video.width / video.height, face_share=avatar.face_share)


def auto_id(avatar: AvatarSettings) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", avatar.idle_source.stem)[:58] or "source"
    return f"auto-{stem}"


def load_avatar(
    avatar: AvatarSettings, video: VideoSettings, needs_face: bool, keep_rgb: bool,
    ffmpeg: str = "ffmpeg", alive: AliveSettings | None = None,
) -> Avatar:
    """Blocking: run it off the event loop. With `alive` the face is found (the source
    prepared) for the motion even where the animator needs none."""
    alive = alive or AliveSettings(enabled="off")
    if avatar.id is None and alive_for(alive, is_image(avatar.idle_source)):
        needs_face = True
    if avatar.id is None and not needs_face and avatar.framing != "face":
        idle = load_idle(avatar.idle_source, video.width, video.height, video.fps,
                         avatar.max_idle_frames, ffmpeg)
        return Avatar(idle)
    from .prepare import ensure, load

    if avatar.id is not None:
        avatar_id, source = avatar.id, None
    else:
        avatar_id, source = auto_id(avatar), avatar.idle_source
    directory = ensure(
        avatar_id, source, avatar.avatars_dir, build_settings(avatar, video), ffmpeg=ffmpeg
    )
    prepared = load(directory)
    return for_output(prepared, video.width, video.height, keep_rgb,
                      alive_for(alive, _still(prepared)))


def load_prepared(
    avatar_id: str, avatar: AvatarSettings, video: VideoSettings, keep_rgb: bool,
    alive: AliveSettings | None = None,
) -> Avatar:
    """A prepared avatar as it is, for a stream already on air: one that is not prepared or
    is stale is refused (rebuilding it here would take the stream's CPU for minutes).
    Blocking: run it off the event loop."""
    from .cache import AvatarCacheError, check_id, read_manifest
    from .prepare import KEEP_TALKING, load, stale_reason

    directory = avatar.avatars_dir / check_id(avatar_id)
    manifest = read_manifest(directory)
    if manifest is None:
        raise AvatarCacheError(f"avatar {avatar_id!r} is not prepared (no cache in "
                               f"{directory}); run `avatarcast prepare --id {avatar_id} ...`")
    settings = build_settings(avatar, video)
    reason = stale_reason(directory, avatar_id, settings, None, manifest, talking=KEEP_TALKING)
    if reason is not None:
        raise AvatarCacheError(f"avatar {avatar_id!r} must be prepared again ({reason}); run "
                               f"`avatarcast prepare --id {avatar_id} ...`")
    prepared = load(directory)
    return for_output(prepared, video.width, video.height, keep_rgb,
                      alive_for(alive or AliveSettings(enabled="off"), _still(prepared)))

