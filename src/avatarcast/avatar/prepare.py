"""Building, checking and loading the avatar cache (see cache.py for its layout)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from . import cache, framing, masks, person
from .atlas_build import build_atlas
from .cache import ATLAS_FILE, AvatarCacheError, BuildSettings
from .models import models_fingerprint
from .segment import SegmentationError
from .source import SourceError, decode, file_sha256, fit, is_image, probe_size
from .track import FaceTracker, NoFaceError, fill_gaps, smooth

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
Landmarks = npt.NDArray[np.float32]


@dataclass
class PreparedAvatar:
    directory: Path
    manifest: dict[str, Any]
    frames: list[Image]  # RGB at the source's (or its face box's) capped resolution
    landmarks: npt.NDArray[np.float32]  # (N, 468, 3)
    found: npt.NDArray[np.bool_]
    crop_boxes: npt.NDArray[np.float32]  # (N, 4)
    mouth_masks: npt.NDArray[np.uint8]  # (N, 256, 256)
    lower_face_masks: npt.NDArray[np.uint8]
    person: npt.NDArray[np.uint8] | None = None  # the person's masks (person.py), if made


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
    image = is_image(source)
    mode = settings.framing_for(image)
    total = 1 if image else min(estimate, settings.max_frames)
    with tqdm(total=total * (2 if mode == "face" else 1), unit="frame",
              desc=f"prepare {avatar_id}", disable=not show_progress) as bar:
        frames, found, size, record = _decode(source, (width, height), mode, settings, bar,
                                              ffmpeg)
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
        "settings": settings.as_dict(image),
        "models": models_fingerprint(),
        "frames": len(frames),
        "size": list(size),
        "faces_found": int(have.sum()),
        "framing": record,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    extra: dict[str, dict[str, Any]] = {}
    try:
        extra[person.PERSON_FILE] = person.arrays(person.answers(frames),
                                                  str(manifest["created"]))
    except SegmentationError as exc:  # made when a background first needs it
        log.warning("avatar %s: the person's masks are not made (%s)", avatar_id, exc)
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
        "prepared avatar %s: %d frame(s) at %dx%d%s, face in %d (%d filled from neighbours), "
        "%.1f s", avatar_id, len(frames), size[0], size[1], _framed(record), int(have.sum()),
        missing, time.perf_counter() - t0,
    )
    return directory


def _decode(
    source: Path, source_size: tuple[int, int], mode: framing.Mode, settings: BuildSettings,
    bar: tqdm[Any], ffmpeg: str,
) -> tuple[list[Image], list[Landmarks | None], tuple[int, int], dict[str, Any]]:
    """The frames to cache, the face found in each, their size and the framing's record.
    Framed on the face, the source is read twice: once to find the box (its frames are not
    kept), once for the box alone at its own resolution, where the faces are found again."""
    width, height = source_size
    size = fit(width, height, settings.max_side)
    record: dict[str, Any] = {"mode": mode, "source_size": [width, height]}
    tracker = FaceTracker()
    frames, found = _track(tracker, bar, decode(source, size, settings.fps,
                                                settings.max_frames, ffmpeg), keep=mode != "face")
    if mode != "face":
        return frames, found, size, record
    box = _face_box(found, size, source_size, settings, source)
    record.update(box=box.as_list(), letterbox=box.letterbox)
    sx, sy = width / size[0], height / size[1]
    size = fit(box.w, box.h, settings.max_side)
    moved = [None if f is None else _into_box(f, sx, sy, box, size) for f in found]
    cropped = decode(source, size, settings.fps, settings.max_frames, ffmpeg,
                     crop=(box.x, box.y, box.w, box.h))
    frames, found = _track(tracker, bar, cropped, fallback=moved)
    return frames, found, size, record


def _track(
    tracker: FaceTracker, bar: tqdm[Any] | None, frames: Iterator[Image], *, keep: bool = True,
    fallback: list[Landmarks | None] | None = None,
) -> tuple[list[Image], list[Landmarks | None]]:
    """The frames (when kept) and the face found in each; where none is found, the
    fallback's (the same frame's face found before, moved into these frames)."""
    kept: list[Image] = []
    found: list[Landmarks | None] = []
    for i, rgb in enumerate(frames):
        if keep:
            kept.append(rgb)
        lm = tracker.find(rgb)
        if lm is None and fallback is not None and i < len(fallback):
            lm = fallback[i]
        found.append(lm)
        if bar is not None:
            bar.update(1)
    return kept, found


def plan(source: Path, settings: BuildSettings, ffmpeg: str = "ffmpeg") -> dict[str, Any]:
    """The frame size and framing a cache of this source would record, without building it.
    Framed on the face, a video's box is estimated from its first frame (the clip's box holds
    every frame's face: as large or larger)."""
    width, height, _ = probe_size(source, ffmpeg)
    mode = settings.framing_for(is_image(source))
    size = fit(width, height, settings.max_side)
    record: dict[str, Any] = {"mode": mode, "source_size": [width, height]}
    if mode == "face":
        _, found = _track(FaceTracker(), None, decode(source, size, settings.fps, 1, ffmpeg),
                          keep=False)
        box = _face_box(found, size, (width, height), settings, source)
        record.update(box=box.as_list(), letterbox=box.letterbox)
        size = fit(box.w, box.h, settings.max_side)
    return {"size": list(size), "framing": record}


def _face_box(
    found: list[Landmarks | None], size: tuple[int, int], source_size: tuple[int, int],
    settings: BuildSettings, source: Path,
) -> framing.Box:
    """The face box, in the source's pixels, from the faces found in frames of `size`."""
    (w, h), (sw, sh) = size, source_size
    to_source = np.array([sw / w, sh / h, 1.0], np.float32)
    faces = [framing.FaceSpan.of(f * to_source) for f in found if f is not None]
    if not faces:
        raise NoFaceError(f"no face found in {source} ({len(found)} frame(s) searched)")
    return framing.face_box(faces, sw, sh, settings.box_aspect, settings.face_share)


def _into_box(
    lm: Landmarks, sx: float, sy: float, box: framing.Box, size: tuple[int, int]
) -> Landmarks:
    """Landmarks of a whole frame (source pixels per frame pixel: sx, sy) moved into the
    frames of the box at `size`."""
    kx, ky = size[0] / box.w, size[1] / box.h
    out = lm.copy()
    out[:, 0] = (lm[:, 0] * sx - box.x) * kx
    out[:, 1] = (lm[:, 1] * sy - box.y) * ky
    out[:, 2] = lm[:, 2] * sx * kx
    return out


def _framed(record: dict[str, Any]) -> str:
    if record["mode"] != "face":
        return ""
    x, y, w, h = record["box"]
    sw, sh = record["source_size"]
    return (f", framed on the face: {w}x{h} at ({x}, {y}) of the {sw}x{sh} source"
            + (", letterboxed: the source is too narrow" if record["letterbox"] else ""))


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
    # One build of an avatar at a time, across threads and processes (two channels of a worker
    # on one avatar, two workers sharing avatars_dir): the second waits, then finds it built.
    # Two builds at once wrote over each other's files ("avatar cache damaged").
    with _building(avatars_dir, directory.name):
        return _ensure(directory, avatar_id, source, avatars_dir, settings, ffmpeg)


@contextlib.contextmanager
def _building(avatars_dir: Path, name: str) -> Iterator[None]:
    try:
        avatars_dir.mkdir(parents=True, exist_ok=True)
        f = open(avatars_dir / f".{name}.lock", "a")  # noqa: SIM115 (held across the yield)
    except OSError:  # a read-only avatars_dir (prepared elsewhere): nothing is built here
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ensure(directory: Path, avatar_id: str, source: Path | None, avatars_dir: Path,
            settings: BuildSettings, ffmpeg: str) -> Path:
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
        msk["mouth"], msk["lower_face"], person.read(directory, count),
    )
