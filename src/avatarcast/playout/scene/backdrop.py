"""The background a `scene` control message asks for (layer `background`): a colour, a picture
in the scene file's folder, the scene file's own background (shown), or none (hidden: the
avatar's own). Checked before anything changes: a picture that is not there, or outside the
scene's folder, is refused with the reason."""

from __future__ import annotations

from pathlib import Path

from .spec import Background, Scene


class BackdropError(ValueError):
    """The background asked for cannot be had; the text says why."""


def wanted(scene: Scene, base: Path, *, visible: bool | None, color: str | None,
           image: str | None) -> Background | None:
    """The background to put behind the person, or None for the avatar's own."""
    if color is not None:
        return Background(color=color)
    if image is not None:
        path = (base / image).resolve()
        if not path.is_relative_to(base.resolve()):
            raise BackdropError(f"{image}: outside the scene's folder {base}")
        if not path.is_file():
            raise BackdropError(f"{image}: no such file in {base}")
        return Background(image=path)
    if visible:
        if scene.background is None:
            raise BackdropError("the scene file has none to show (send color or image)")
        return scene.background
    return None


def described(background: Background | None) -> str | None:
    """What /status shows of it: the colour, the picture's file name, or None."""
    if background is None:
        return None
    return background.color or (background.image.name if background.image else None)
