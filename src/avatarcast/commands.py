"""The one-shot commands: `avatarcast prepare` and `avatarcast models download`."""

from __future__ import annotations

import argparse
import sys

from .cli import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from .settings import Settings


def _fail(message: str, code: int) -> int:
    print(f"avatarcast: {message}", file=sys.stderr)
    return code


def prepare_command(settings: Settings, args: argparse.Namespace) -> int:
    from .avatar import cache
    from .avatar.loader import build_settings
    from .avatar.models import FaceModelError
    from .avatar.prepare import build, stale_reason
    from .avatar.source import SourceError, is_image
    from .avatar.track import NoFaceError

    source = args.video or args.image
    try:
        avatar_id = cache.check_id(args.id)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if not source.is_file():
        return _fail(f"source not found: {source}", EXIT_USAGE)
    if args.image is not None and not is_image(source):
        return _fail(f"--image {source}: not an image file; use --video for videos", EXIT_USAGE)
    if args.video is not None and is_image(source):
        return _fail(f"--video {source}: this is an image; use --image", EXIT_USAGE)
    build_with = build_settings(settings.avatar, settings.video.fps)
    directory = settings.avatar.avatars_dir / avatar_id
    try:
        if stale_reason(directory, avatar_id, build_with, source) is None and not args.force:
            print(f"avatar {avatar_id} is up to date in {directory}")
            return EXIT_OK
        build(source, avatar_id, settings.avatar.avatars_dir, build_with,
              ffmpeg=settings.output.ffmpeg_path, show_progress=True)
    except NoFaceError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except SourceError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except FaceModelError as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    print(f"avatar {avatar_id} prepared in {directory}")
    return EXIT_OK


def download_command(settings: Settings, args: argparse.Namespace) -> int:
    from .face.musetalk.download import DownloadError, download

    try:
        download(settings.face.models_dir, endpoint=args.endpoint)
    except DownloadError as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    print(f"MuseTalk v1.5 weights are in {settings.face.models_dir}")
    return EXIT_OK
