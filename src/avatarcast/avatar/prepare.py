"""Building, checking and loading the avatar cache (see cache.py for its layout)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from . import cache, masks
from .atlas_build import build_atlas
from .cache import ATLAS_FILE, AvatarCacheError, BuildSettings
from .models import models_fingerprint
from .source import SourceError, decode, file_sha256, fit, is_image, probe_size
from .track import FaceTracker, NoFaceError, fill_gaps, smooth

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]


@dataclass
class PreparedAvatar:
    directory: Path
    manifest: dict[str, Any]
    frames: list[Image]  # RGB at the source's (capped) resolution
    landmarks: npt.NDArray[np.float32]  # (N, 468, 3)
    found: npt.NDArray[np.bool_]
    crop_boxes: npt.NDArray[np.float32]  # (N, 4)
    mouth_masks: npt.NDArray[np.uint8]  # (N, 256, 256)
    lower_face_masks: npt.NDArray[np.uint8]


def build(
    source: Path,
    avatar_id: str,
    avatars_dir: Path,
    settings: BuildSettings,
    *,
    talking: Path | None = None,
    ffmpeg: str = "ffmpeg",
    show_progress: bool = False,
) -> Path:
    """Decode the source, find the face in every frame, and write the cache; with a talking
    reference, build its mouth atlas too. Raises NoFaceError when no frame of the source
    shows a face, AtlasError when the talking reference cannot make an atlas."""
    cache.check_id(avatar_id)
    if not source.is_file():
        raise SourceError(f"avatar source not found: {source} (no such file)")
    if talking is not None and not talking.is_file():
        raise SourceError(f"talking reference not found: {talking} (no such file)")
    if talking is not None and is_image(talking):
        raise SourceError(f"talking reference {talking}: an image; it must be a video in "
                          "which the person speaks")
    t0 = time.perf_counter()
    width, height, estimate = probe_size(source, ffmpeg)
    size = fit(width, height, settings.max_side)
    total = 1 if is_image(source) else min(estimate, settings.max_frames)
    tracker = FaceTracker()
    frames: list[Image] = []
    found: list[npt.NDArray[np.float32] | None] = []
    with tqdm(total=total, unit="frame", desc=f"prepare {avatar_id}",
              disable=not show_progress) as bar:
        for rgb in decode(source, size, settings.fps, settings.max_frames, ffmpeg):
            frames.append(rgb)
            found.append(tracker.find(rgb))
            bar.update(1)
    try:
        landmarks, have = fill_gaps(found)
    except NoFaceError:
        raise NoFaceError(f"no face found in {source} ({len(frames)} frame(s) searched)") from None
    landmarks = smooth(landmarks)
    boxes = np.stack([masks.crop_box(lm) for lm in landmarks])
    mouth = np.stack([masks.mouth_mask(lm, b) for lm, b in zip(landmarks, boxes, strict=True)])
    lower = np.stack(
        [masks.lower_face_mask(lm, b) for lm, b in zip(landmarks, boxes, strict=True)]
    )
    manifest = {
        "format": cache.FORMAT,
        "id": avatar_id,
        "source": {"path": str(source.resolve()), "sha256": file_sha256(source),
                   "kind": "image" if is_image(source) else "video"},
        "settings": settings.as_dict(),
        "models": models_fingerprint(),
        "frames": len(frames),
        "size": list(size),
        "faces_found": int(have.sum()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    extra: dict[str, dict[str, Any]] = {}
    if talking is not None:
        atlas, summary = build_atlas(talking, fps=settings.fps, max_side=settings.max_side,
                                     ffmpeg=ffmpeg, show_progress=show_progress)
        extra[ATLAS_FILE] = atlas
        manifest["talking"] = {"path": str(talking.resolve()), "sha256": file_sha256(talking),
                               **summary}
    directory = avatars_dir / avatar_id
    cache.write(
        directory, manifest, frames,
        {"landmarks": landmarks, "found": have, "crop_boxes": boxes},
        {"mouth": mouth, "lower_face": lower}, extra,
    )
    missing = len(frames) - int(have.sum())
    log.info(
        "prepared avatar %s: %d frame(s) at %dx%d, face in %d (%d filled from neighbours), "
        "%.1f s", avatar_id, len(frames), size[0], size[1], int(have.sum()), missing,
        time.perf_counter() - t0,
    )
    return directory


def ensure(
    avatar_id: str,
    source: Path | None,
    avatars_dir: Path,
    settings: BuildSettings,
    *,
    ffmpeg: str = "ffmpeg",
) -> Path:
    """The cache for avatar_id, rebuilt first if it is missing or stale. Without a source
    argument the one recorded in the manifest is used."""
    directory = avatars_dir / cache.check_id(avatar_id)
    if source is not None and not source.is_file():
        raise SourceError(f"idle source not found: {source} (no such file); point "
                          "AVATARCAST_AVATAR__IDLE_SOURCE at an image or a video")
    manifest = cache.read_manifest(directory)
    if source is None and manifest is not None:
        recorded = Path(manifest.get("source", {}).get("path", ""))
        source = recorded if recorded.is_file() else None
    # The talking reference is the one the avatar was prepared with; one that is no longer
    # at hand is not compared (its atlas is kept as it is).
    talking_path = (manifest or {}).get("talking", {}).get("path")
    talking = Path(talking_path) if talking_path else None
    compare = talking is None or talking.is_file()
    reason = stale_reason(directory, avatar_id, settings, source, manifest,
                          talking=talking if compare else KEEP_TALKING)
    if reason is None:
        return directory
    if manifest is None and not directory.exists():
        reason = "not prepared yet"
    if source is None or not source.is_file():
        raise AvatarCacheError(
            f"avatar {avatar_id!r} in {directory}: {reason}, and its source is not at hand to "
            f"rebuild it; run `avatarcast prepare --id {avatar_id} --video|--image FILE`"
        )
    if not compare:
        raise AvatarCacheError(
            f"avatar {avatar_id!r} in {directory}: {reason}, and its talking reference "
            f"{talking} is not at hand to rebuild it; run `avatarcast prepare --id "
            f"{avatar_id} ... --talking FILE`")
    log.info("avatar %s: %s; building it from %s", avatar_id, reason, source)
    return build(source, avatar_id, avatars_dir, settings, talking=talking, ffmpeg=ffmpeg)


KEEP_TALKING = Path("\0keep")  # stale_reason: leave the talking reference out of it


def stale_reason(
    directory: Path, avatar_id: str, settings: BuildSettings, source: Path | None,
    manifest: dict[str, Any] | None = None, *, talking: Path | None = None,
) -> str | None:
    """Why the cache in directory must not be used for this source, talking reference (None:
    the avatar has no atlas) and these settings, or None when it is current. A source that
    is not at hand is not compared."""
    if manifest is None:
        manifest = cache.read_manifest(directory)
    sha = file_sha256(source) if source is not None and source.is_file() else None
    reason = cache.stale_reason(manifest, avatar_id, settings, models_fingerprint(), sha)
    if reason is not None or talking == KEEP_TALKING:
        return reason
    recorded = (manifest or {}).get("talking")
    if talking is None:
        return "it has a mouth atlas, now asked for without one" if recorded else None
    if not recorded:
        return "built without a talking reference"
    if recorded.get("sha256") != file_sha256(talking):
        return "the talking reference changed"
    if not (directory / ATLAS_FILE).is_file():
        return f"its {ATLAS_FILE} is missing"
    return None


def load(directory: Path) -> PreparedAvatar:
    manifest = cache.read_manifest(directory)
    if manifest is None:
        raise AvatarCacheError(f"no avatar cache in {directory}")
    count = int(manifest["frames"])
    geo = cache.read_arrays(directory / "geometry.npz", ("landmarks", "found", "crop_boxes"))
    msk = cache.read_arrays(directory / "masks.npz", ("mouth", "lower_face"))
    frames = cache.read_frames(directory, count)
    for name, arr in (*geo.items(), *msk.items()):
        if len(arr) != count:
            raise AvatarCacheError(
                f"avatar cache damaged: {name} has {len(arr)} entries for {count} frames"
            )
    return PreparedAvatar(
        directory, manifest, frames, geo["landmarks"], geo["found"], geo["crop_boxes"],
        msk["mouth"], msk["lower_face"],
    )
