"""The background a `scene` control message asks for (layer `background`): a colour, a picture
or a video in the scene file's folder, the scene file's own background (shown), or none (hidden: the
avatar's own). Checked before anything changes: a file that is not there, or outside the
scene's folder, is refused with the reason."""

from __future__ import annotations

from pathlib import Path

from .spec import Background, Scene


class BackdropError(ValueError):
    """The background asked for cannot be had; the text says why."""


def wanted(scene: Scene, base: Path, *, visible: bool | None, color: str | None,
           image: str | None, video: str | None = None) -> Background | None:
    """The background to put behind the person, or None for the avatar's own."""
    if color is not None:
        return Background(color=color)
    for field, name in (("image", image), ("video", video)):
        if name is not None:
            path = (base / name).resolve()
            if not path.is_relative_to(base.resolve()):
                raise BackdropError(f"{name}: outside the scene's folder {base}")
            if not path.is_file():
                raise BackdropError(f"{name}: no such file in {base}")
            return Background.model_validate({field: path})
    if visible:
        if scene.background is None:
            raise BackdropError("the scene file has none to show (send color or image)")
        return scene.background
    return None


def described(background: Background | None) -> str | None:
    """What /status shows of it: the colour, the picture's file name, or None."""
    if background is None:
        return None
    return background.color or (background.file.name if background.file else None)
