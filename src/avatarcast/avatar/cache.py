"""The versioned avatar cache under models/avatars/<id>/.

    manifest.json   format, id, source (path, sha256, kind), the settings it was built with,
                    the face models' fingerprint, frame count and size, and its framing (mode,
                    the source's size and, framed on the face, the box cut from it)
    frames/NNNNNN.png   the idle cycle, lossless, at the source's (or the box's) resolution
    geometry.npz    landmarks (N, 468, 3), found (N,), crop_boxes (N, 4), in frame pixels
    masks.npz       mouth and lower_face (N, 256, 256) uint8, in crop space
    atlas.npz       the mouth atlas from a talking reference, when one was given (atlas_build.py)
    musetalk.npz    MuseTalk latents of the masked and reference crops and blend masks, when built
    person.npz      the segmentation model's answer on each frame (N, mh, mw) uint8, the models'
                    fingerprint and the manifest's `created` (person.py): a replaced background

A cache whose manifest does not match what is asked of it is stale and is rebuilt; it is
never used as it is.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from ..infra.errors import UserError
from ..settings import AVATAR_ID_PATTERN, Framing

FORMAT = 1
ATLAS_FILE = "atlas.npz"


class AvatarCacheError(UserError):
    """The cache is missing, stale or unreadable, and cannot be rebuilt here."""


@dataclass(frozen=True)
class BuildSettings:
    """What a cache is built with; the defaults are those of a default daemon (1280x720)."""

    fps: int
    max_frames: int
    max_side: int
    framing: Framing = "auto"
    aspect: float = 16 / 9  # the output's width / height, the shape of a face box
    face_share: float = 0.35

    def framing_for(self, image: bool) -> Literal["source", "face"]:
        if self.framing == "auto":
            return "face" if image else "source"
        return self.framing

    @property
    def box_aspect(self) -> float:
        """The aspect a face box is cut to: three figures, so that outputs of one shape
        (854x480, 1280x720, 1920x1080) share a cache; drawing it cuts what is left over."""
        return float(f"{self.aspect:.3g}")

    def as_dict(self, image: bool) -> dict[str, Any]:
        """As recorded in the manifest and compared. A cache of the source as it is records
        no framing, as caches did before framing existed, so those stay current."""
        built: dict[str, Any] = {"fps": self.fps, "max_frames": self.max_frames,
                                 "max_side": self.max_side}
        if self.framing_for(image) == "face":
            built.update(framing="face", aspect=self.box_aspect, face_share=self.face_share)
        return built


def check_id(avatar_id: str) -> str:
    if not AVATAR_ID_PATTERN.match(avatar_id):
        raise ValueError(
            f"invalid avatar id {avatar_id!r}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    return avatar_id


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def framed_as(manifest: dict[str, Any]) -> str:
    """How a cache frames its source, in one comparable line: `source`, or `face X,Y,W,H` (the
    box cut from the source, in its pixels). Two caches of one source draw the same picture
    at an output size when these match."""
    box = (manifest.get("framing") or {}).get("box")
    return "face " + ",".join(str(int(v)) for v in box) if box else "source"


def stale_reason(
    manifest: dict[str, Any] | None,
    avatar_id: str,
    build: BuildSettings,
    models: str,
    source_sha: str | None,
) -> str | None:
    """Why this cache must not be used, or None if it is current. source_sha is None when
    the source file is not at hand to compare."""
    if manifest is None:
        return "no readable manifest"
    if manifest.get("format") != FORMAT:
        return f"cache format {manifest.get('format')!r}, this version reads {FORMAT}"
    if manifest.get("id") != avatar_id:
        return f"built for avatar {manifest.get('id')!r}"
    wanted = build.as_dict(manifest.get("source", {}).get("kind") == "image")
    if manifest.get("settings") != wanted:
        return f"built with {manifest.get('settings')}, now {wanted}"
    if manifest.get("models") != models:
        return "the face models changed"
    if source_sha is not None and manifest.get("source", {}).get("sha256") != source_sha:
        return "the source file changed"
    return None


def write(
    directory: Path,
    manifest: dict[str, Any],
    frames: list[npt.NDArray[np.uint8]],
    geometry: dict[str, Any],
    masks: dict[str, Any],
    extra: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Written beside the old cache and swapped in, so a crash never leaves half a cache.
    `extra` names further .npz files and their arrays."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(directory.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "frames").mkdir(parents=True)
    for i, rgb in enumerate(frames):
        path = str(tmp / "frames" / f"{i:06d}.png")
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(path, bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise AvatarCacheError(f"cannot write {path}")
    np.savez(tmp / "geometry.npz", **geometry)
    np.savez_compressed(tmp / "masks.npz", **masks)
    for name, arrays in (extra or {}).items():
        np.savez_compressed(tmp / name, **arrays)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def read_frames(directory: Path, count: int) -> list[npt.NDArray[np.uint8]]:
    frames = []
    for i in range(count):
        path = directory / "frames" / f"{i:06d}.png"
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise AvatarCacheError(f"avatar cache damaged: cannot read {path}")
        frames.append(np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8))
    return frames


def read_arrays(path: Path, names: tuple[str, ...]) -> dict[str, npt.NDArray[Any]]:
    try:
        with np.load(path) as data:
            return {n: data[n] for n in names}
    except (OSError, KeyError, ValueError) as exc:
        raise AvatarCacheError(f"avatar cache damaged: {path}: {exc}") from None
