"""The avatars the stream can show, each loaded with the animator that talks for it: the
default, the ones that messages name, and what a `set` control switches to.

A look is loaded once and kept while it is among the `avatar.keep_loaded` most recently
used; the default and a look that is rendering are never unloaded. A look that cannot load
(an avatar that is not prepared, an animator that cannot run here) is refused with the
reason, and the stream goes on with what it had.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ...infra.errors import Unavailable, UserError
from ...media.idle import IdleCycle
from ...media.loop import LoopError, LoopingVideo
from ...settings import Settings
from ..background import Backdrop, with_background, with_video
from ..loader import auto_id, load_avatar, load_prepared
from ..runtime import Avatar
from .select import choose, needs_face
from .service import FaceService, make_animator

log = logging.getLogger(__name__)

# A replaced background video closes once unused this long (frames made over it before the
# switch may still air; made over one closed, they air over the video playing now).
RETIRED_VIDEO_S = 30.0


class LookError(UserError):
    """An avatar or animator the stream cannot switch to; the text says why."""


@dataclass(eq=False)
class Look:
    animator: str
    avatar_id: str | None  # None: the configured idle source, without a prepared id
    avatar: Avatar
    face: FaceService
    busy: int = 0  # utterances rendering with it

    @property
    def idle(self) -> IdleCycle:
        return self.avatar.idle


Key = tuple[str, str | None]


class Looks:
    """Owned by the event loop."""

    def __init__(self, settings: Settings, default: Look | None = None,
                 background: Backdrop | None = None) -> None:
        self._s = settings
        self._background = background  # replaced on every avatar loaded, if given
        # The video playing behind the person when the background is one (shared by every
        # look made over it), and those replaced, which close once nothing airs them.
        self.video: LoopingVideo | None = None
        self._videos: list[LoopingVideo] = []
        self._loaded: OrderedDict[Key, Look] = OrderedDict()
        # Looks replaced by a background switch while they rendered: closed once idle.
        self._retired: list[Look] = []
        self._lock = asyncio.Lock()
        self._configured_animator = default.animator if default is not None else "lite"
        if default is not None:
            self._loaded[self._key(default)] = default
            self.default = default

    @staticmethod
    def _key(look: Look) -> Key:
        return look.animator, look.avatar_id

    def avatar_name(self, look: Look) -> str:
        return look.avatar_id or auto_id(self._s.avatar)

    async def start(self) -> Look:
        """Load the configured avatar (preparing it if its cache is stale); its animator loads
        in `start_animator`, once the stream is on air."""
        animator, why = await asyncio.to_thread(choose, self._s.face)
        log.info("face animator: %s (%s)", animator, why)
        self._configured_animator = animator
        self.default = await self._load(animator, self._s.avatar.id, startup=True)
        self._loaded[self._key(self.default)] = self.default
        return self.default

    async def start_animator(self) -> None:
        await self.default.face.start(self.default.avatar)

    async def get(self, avatar: str | None = None) -> Look:
        """The look for a message: its avatar (None: the default's) with the default animator."""
        d = self.default
        return await self._get(d.animator, avatar if avatar is not None else d.avatar_id)

    async def switch(self, changes: dict[str, str | None]) -> Look:
        """Make a new default from `changes` (avatar and/or animator; None: the configured
        one). Raises LookError, leaving the default as it was."""
        d = self.default
        animator = d.animator
        if "animator" in changes:
            animator = await self._animator(changes["animator"])
        avatar_id = d.avatar_id
        if "avatar" in changes:
            avatar_id = changes["avatar"] or self._s.avatar.id
        look = await self._get(animator, avatar_id)
        if look is not d:
            self.default = look
            log.info("default look now: avatar %s with the %s animator",
                     self.avatar_name(look), look.animator)
        return look

    async def _animator(self, name: str | None) -> str:
        if name is None:
            return self._configured_animator
        if name == "auto":
            chosen, why = await asyncio.to_thread(
                choose, self._s.face.model_copy(update={"animator": "auto"}))
            log.info("animator auto: %s (%s)", chosen, why)
            return chosen
        if name == "remote" and not self._s.face.remote_url:
            raise LookError("the remote animator needs face.remote_url "
                            "(AVATARCAST_FACE__REMOTE_URL)")
        return name

    async def set_background(self, background: Backdrop | None) -> None:
        """Every loaded look again, over `background` (None: the avatar's own), each with an
        animator of its own loaded with the new frames; the default too. Texts rendering
        meanwhile finish with the looks they began with, which are closed after. Raises
        LookError, changing nothing, when one cannot be had."""
        async with self._lock:
            await self._reap()
            made: OrderedDict[Key, Look] = OrderedDict()
            avatars: dict[str | None, Avatar] = {}  # one picture an avatar, as in _load
            video = None  # the video behind the person, if the background is one
            try:
                if background is not None and background.video is not None:
                    video = await self._playing(background.video)
                for key, old in self._loaded.items():
                    avatar = avatars.get(old.avatar_id)
                    if avatar is None or not _fits(avatar, old.animator):
                        avatar = await self._read(old.animator, old.avatar_id,
                                                  startup=old.avatar_id is None)
                        if background is not None:
                            avatar = await self._behind(avatar, background, video)
                        avatars[old.avatar_id] = avatar
                    made[key] = await self._started(old.animator, old.avatar_id, avatar)
            except BaseException as exc:  # nothing changes: what was made for it is closed
                for look in made.values():
                    await look.face.aclose()
                if video is not None and video is not self.video:
                    await self._stop(video)
                if isinstance(exc, UserError | Unavailable):
                    raise LookError(str(exc)) from None
                raise
            old_default = self._key(self.default)
            self._retired += self._loaded.values()
            self._loaded, self._background = made, background
            self.default = made[old_default]
            if self.video is not None and self.video is not video:
                self.video.retire()  # closes itself once what was made over it is aired
            self.video = video
            await self._reap()

    async def _reap(self) -> None:
        """Close the retired looks no text renders with any more (a retired video closes
        itself once unused; forgotten here once it has)."""
        for look in [r for r in self._retired if not r.busy]:
            self._retired.remove(look)
            await look.face.aclose()
        self._videos = [v for v in self._videos if not v.closed]

    async def _playing(self, path: Path) -> LoopingVideo:
        """The video playing `path` behind the person: the one playing now if it is that
        file, else a new one, started (LoopError: it cannot play)."""
        if self.video is not None and self.video.path == path and not self.video.closed:
            return self.video
        v = self._s.video
        video = LoopingVideo(path, v.width, v.height, v.fps, ffmpeg=self._s.output.ffmpeg_path,
                             idle_close_s=RETIRED_VIDEO_S)
        self._videos.append(video)  # (closed by aclose even if this is cancelled)
        try:
            await asyncio.to_thread(video.start)
        except LoopError:
            self._videos.remove(video)  # (it closed itself)
            raise
        return video

    async def _stop(self, video: LoopingVideo) -> None:
        await asyncio.to_thread(video.close)
        if video in self._videos:
            self._videos.remove(video)

    async def _get(self, animator: str, avatar_id: str | None) -> Look:
        key: Key = (animator, avatar_id)
        async with self._lock:  # one load at a time: two messages for one avatar load it once
            await self._reap()
            look = self._loaded.get(key)
            if look is None:
                look = await self._load(animator, avatar_id)
                self._loaded[key] = look
                await self._unload_beyond(self._s.avatar.keep_loaded)
            self._loaded.move_to_end(key)
            return look

    async def _behind(self, avatar: Avatar, background: Backdrop,
                      video: LoopingVideo | None = None) -> Avatar:
        """The avatar over `background` (UserError: it cannot be had); a video plays in
        `video` (None: the one playing now, started if none is)."""
        try:
            if background.video is not None:
                if video is None:
                    video = self.video = await self._playing(background.video)
                return await asyncio.to_thread(with_video, avatar, video)
            return await asyncio.to_thread(with_background, avatar, background)
        except OSError as exc:  # an image that cannot be read
            raise UserError(f"scene: background: {exc}") from None

    async def _load(self, animator: str, avatar_id: str | None, startup: bool = False) -> Look:
        s = self._s
        what = f"avatar {avatar_id or auto_id(s.avatar)!r} with the {animator} animator"
        try:
            if (avatar := self._loaded_avatar(animator, avatar_id)) is None:
                avatar = await self._read(animator, avatar_id, startup)
                if self._background is not None:
                    avatar = await self._behind(avatar, self._background)
            # (else another animator's look has it: one copy of its frames, one picture)
        except (UserError, Unavailable) as exc:
            if startup:
                raise
            raise LookError(str(exc)) from None
        if startup:
            face = FaceService(make_animator(animator, s.face, s.video.fps),
                               timeout_s=s.face.timeout_s)
            return Look(animator, avatar_id, avatar, face)
        look = await self._started(animator, avatar_id, avatar)
        log.info("loaded %s", what)
        return look

    async def _read(self, animator: str, avatar_id: str | None, startup: bool) -> Avatar:
        """The avatar's frames as prepared (the configured source prepared when its cache is
        stale, at the start or for the configured avatar), before any background."""
        s = self._s
        if startup or avatar_id is None:
            settings = s.avatar.model_copy(update={"id": avatar_id})
            return await asyncio.to_thread(
                load_avatar, settings, s.video, needs_face(animator), animator == "musetalk",
                s.output.ffmpeg_path, s.alive)
        return await asyncio.to_thread(
            load_prepared, avatar_id, s.avatar, s.video, animator == "musetalk", s.alive)

    async def _started(self, animator: str, avatar_id: str | None, avatar: Avatar) -> Look:
        """A look with its animator loaded with `avatar` (LookError: it cannot load)."""
        s = self._s
        face = FaceService(make_animator(animator, s.face, s.video.fps),
                           timeout_s=s.face.timeout_s)
        try:
            await face.start(avatar)
        except Exception as exc:
            await face.aclose()
            what = f"avatar {avatar_id or auto_id(s.avatar)!r} with the {animator} animator"
            raise LookError(f"cannot load {what}: {exc}") from None
        return Look(animator, avatar_id, avatar, face)

    def _loaded_avatar(self, animator: str, avatar_id: str | None) -> Avatar | None:
        for look in self._loaded.values():
            if look.avatar_id == avatar_id and _fits(look.avatar, animator):
                return look.avatar
        return None

    async def _unload_beyond(self, keep: int) -> None:
        for key in list(self._loaded):
            if len(self._loaded) <= keep:
                return
            look = self._loaded[key]
            if look is self.default or look.busy:
                continue
            del self._loaded[key]
            await look.face.aclose()
            log.info("unloaded avatar %s (%s animator): least recently used",
                     self.avatar_name(look), look.animator)

    @property
    def loaded(self) -> list[str]:
        return [f"{self.avatar_name(look)}/{look.animator}" for look in self._loaded.values()]

    async def aclose(self) -> None:
        for look in [*self._loaded.values(), *self._retired]:
            await look.face.aclose()
        self._loaded.clear()
        self._retired.clear()
        for video in list(self._videos):
            await self._stop(video)
        self.video = None


def _fits(avatar: Avatar, animator: str) -> bool:
    """Whether `avatar` as loaded has what `animator` needs (faces; full-colour frames)."""
    return ((avatar.faces is not None or not needs_face(animator))
            and (avatar.rgb is not None or animator != "musetalk"))
