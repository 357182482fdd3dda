"""The one-shot commands: `avatarcast prepare` and `avatarcast models download`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...settings import Settings
from .exits import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, fail


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
