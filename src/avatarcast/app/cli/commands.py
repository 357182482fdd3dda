"""The commands beside the daemon: `avatarcast prepare`, `models download` and `chat`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from ...infra.errors import UserError
from ...settings import Settings
from .exits import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, fail

log = logging.getLogger(__name__)


def prepare_command(settings: Settings, args: argparse.Namespace) -> int:
    from ...avatar import cache
    from ...avatar.loader import build_settings
    from ...avatar.models import FaceModelError
    from ...avatar.prepare import build, stale_reason
    from ...avatar.source import SourceError, is_image
    from ...avatar.track import NoFaceError

    source = args.video or args.image
    try:
        avatar_id = cache.check_id(args.id)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    if not source.is_file():
        return fail(f"source not found: {source}", EXIT_USAGE)
    if args.image is not None and not is_image(source):
        return fail(f"--image {source}: not an image file; use --video for videos", EXIT_USAGE)
    if args.video is not None and is_image(source):
        return fail(f"--video {source}: this is an image; use --image", EXIT_USAGE)
    talking = args.talking
    if talking is not None and not talking.is_file():
        return fail(f"talking reference not found: {talking}", EXIT_USAGE)
    if talking is not None and is_image(talking):
        return fail(f"--talking {talking}: an image; it must be a video in which the person "
                    "speaks", EXIT_USAGE)
    build_with = build_settings(settings.avatar, settings.video)
    directory = settings.avatar.avatars_dir / avatar_id
    try:
        current = stale_reason(directory, avatar_id, build_with, source, talking=talking) is None
        if current and not args.force:
            print(f"avatar {avatar_id} is up to date in {directory}")
        else:
            build(source, avatar_id, settings.avatar.avatars_dir, build_with, talking=talking,
                  ffmpeg=settings.output.ffmpeg_path, show_progress=True)
            print(f"avatar {avatar_id} prepared in {directory}" + _atlas_line(directory))
        _print_sharpness(directory, settings.video.width, settings.video.height)
    except NoFaceError as exc:
        return fail(str(exc), EXIT_FAILED)
    except SourceError as exc:
        return fail(str(exc), EXIT_USAGE)
    except FaceModelError as exc:
        return fail(str(exc), EXIT_UNAVAILABLE)
    return _prepare_musetalk(settings, directory)


def _print_sharpness(directory: Path, width: int, height: int) -> None:
    from ...avatar.cache import read_manifest
    from ...avatar.framing import sharpness

    manifest = read_manifest(directory)
    if manifest is not None:
        sharp = sharpness(manifest, width, height)
        print(("warning: " if sharp.soft else "") + sharp.text)


def _atlas_line(directory: Path) -> str:
    from ...avatar.cache import read_manifest

    talking = (read_manifest(directory) or {}).get("talking")
    if not talking:
        return ""
    return (f", with a mouth atlas of {talking['entries']} mouths in {talking['clusters']} "
            f"shapes from {talking['faces']} frames of {Path(talking['path']).name}")


def _prepare_musetalk(settings: Settings, directory: Path) -> int:
    """When MuseTalk is the animator, its per-frame latents and blend masks are part of the
    avatar: computed here, so the daemon's first start does not wait for them."""
    from ...avatar.face.select import choose

    name, why = choose(settings.face)
    if name != "musetalk":
        return EXIT_OK
    from ...avatar.face.musetalk.material import prepare_material
    from ...avatar.face.musetalk.weights import WeightsError
    from ...avatar.prepare import load
    from ...avatar.runtime import for_output

    video = settings.video
    try:
        avatar = for_output(load(directory), video.width, video.height, keep_rgb=True)
        material = prepare_material(settings.face, avatar)
    except WeightsError as exc:
        return fail(str(exc), EXIT_UNAVAILABLE)
    print(f"MuseTalk material for {video.width}x{video.height} ready ({why}): "
          f"{len(material.latents)} latents, blend mask from {material.mask_source}")
    return EXIT_OK


def download_command(settings: Settings, args: argparse.Namespace) -> int:
    from ...avatar.face.musetalk.download import DownloadError, download

    try:
        download(settings.face.models_dir, endpoint=args.endpoint)
    except DownloadError as exc:
        return fail(str(exc), EXIT_UNAVAILABLE)
    print(f"MuseTalk v1.5 weights are in {settings.face.models_dir}")
    return EXIT_OK


def chat_command(settings: Settings, args: argparse.Namespace) -> int:
    from ..chat.relay import Relay
    from ..chat.sources import chat_sources

    try:
        settings = _for_channel(settings, args.channel)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        sources = chat_sources(settings)
    except (OSError, ValueError) as exc:
        return fail(f"chat: {exc}", EXIT_USAGE)
    if not sources:
        return fail("no chat configured: set AVATARCAST_CHAT__TWITCH__CHANNEL, "
                    "AVATARCAST_CHAT__YOUTUBE__VIDEO_ID (or LIVE_CHAT_ID) and/or "
                    "AVATARCAST_CHAT__WEBHOOK__SECRET", EXIT_USAGE)
    state = settings.state_dir / f"chat-{args.channel or 'default'}.ids"
    try:
        relay = Relay(settings, sources, state)
    except (OSError, UnicodeDecodeError) as exc:
        return fail(f"chat.blocklist_file: {exc}", EXIT_USAGE)

    log.info("chat: reading %s for %s", ", ".join(sources), settings.broker.speak_queue)
    return _until_stopped(relay.run(), "chat")


def show_command(settings: Settings, args: argparse.Namespace) -> int:
    from ..show.runner import ShowRunner
    from ..show.schedule import ScheduleError, load

    try:
        settings = _for_channel(settings, args.channel)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        loaded = load(args.file)
    except ScheduleError as exc:
        return fail(str(exc), EXIT_USAGE)
    state = settings.state_dir / f"show-{args.channel or 'default'}.json"
    runner = ShowRunner(settings, loaded, state)
    log.info("show: %d items from %s for %s", len(loaded.show.item), args.file,
             settings.broker.speak_queue)
    return _until_stopped(runner.run(), "show")


def _for_channel(settings: Settings, channel: str | None) -> Settings:
    """The settings with the channel's queues (ValueError for a bad channel id)."""
    if channel is None:
        return settings
    from ..channels import channel_queues

    return settings.model_copy(update={"broker": channel_queues(settings.broker, channel)})


def _until_stopped(work: Coroutine[Any, Any, int | None], name: str) -> int:
    """Run `work` until it ends (its exit code) or SIGTERM/SIGINT (0)."""
    async def run() -> int:
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task or EXIT_OK
        except asyncio.CancelledError:
            log.info("%s: stopped", name)
            return EXIT_OK

    try:
        return asyncio.run(run())
    except UserError as exc:
        return fail(str(exc), EXIT_USAGE)
    except Exception:
        log.exception("%s failed", name)
        return EXIT_FAILED
