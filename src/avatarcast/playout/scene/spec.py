"""The scene: its settings (AVATARCAST_SCENE__*: the scene file, and the AI label, on by
default) and the scene file (TOML), which lays layers over the avatar:

    [logo]
    path = "logo.png"           # a PNG with alpha; relative to the scene file
    corner = "top-left"         # top-left, top-right, bottom-left, bottom-right
    height = 0.12               # of the picture's height

    [ai_label]                  # on by default, even without a scene file
    text = "AI-generated"
    corner = "top-right"

    [lower_third]
    title = "Avatar Live"
    subtitle = "Your questions, answered"

    [ticker]
    text = "Send your questions in the chat"
    speed = 0.1                 # picture widths a second

    [clock]
    timezone = "Europe/Lisbon"
    format = "%H:%M"
    corner = "bottom-right"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
LABEL = "AI-generated"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SceneSettings(_Part):
    file: Path | None = None
    """A scene file (TOML: logo, lower third, ticker, clock, AI label), laid over every frame
    of every output; unset: the AI label alone."""
    ai_label: bool = True
    """Label the avatar as AI-generated on screen (several jurisdictions require it); the
    scene file's [ai_label] overrides it."""
    ai_label_text: str = Field(default=LABEL, min_length=1, max_length=80)
    """The label's words."""


class Logo(_Part):
    path: Path
    corner: Corner = "top-left"
    height: float = Field(default=0.12, ge=0.02, le=0.5)
    margin: float = Field(default=0.03, ge=0, le=0.2)


class AiLabel(_Part):
    enabled: bool = True
    text: str = Field(default=LABEL, min_length=1, max_length=80)
    corner: Corner = "top-right"
    size: float = Field(default=0.035, ge=0.015, le=0.1)


class LowerThird(_Part):
    title: str = Field(min_length=1, max_length=80)
    subtitle: str | None = Field(default=None, min_length=1, max_length=120)
    enter_s: float = Field(default=0.5, ge=0, le=5)
    size: float = Field(default=0.05, ge=0.02, le=0.12)


class Ticker(_Part):
    text: str = Field(min_length=1, max_length=2000)
    speed: float = Field(default=0.1, gt=0, le=2)
    size: float = Field(default=0.04, ge=0.02, le=0.1)


class Clock(_Part):
    timezone: str = "UTC"
    format: str = Field(default="%H:%M", min_length=1, max_length=40)
    corner: Corner = "bottom-right"
    size: float = Field(default=0.04, ge=0.02, le=0.1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone") from None
        return v


class Background(_Part):
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    """A solid colour, #rrggbb (a key colour for OBS chroma keying: #00b140)."""
    image: Path | None = None
    """A picture (PNG, JPEG), relative to the scene file, scaled to cover the frame."""
    video: Path | None = None
    """A video (MP4, WebM, MOV...), relative to the scene file, scaled to cover the frame and
    played in a loop behind the person (its sound is not used)."""

    @model_validator(mode="after")
    def _one(self) -> Background:
        if sum(x is not None for x in (self.color, self.image, self.video)) != 1:
            raise ValueError("give one of color, image or video")
        return self

    @property
    def file(self) -> Path | None:
        """The picture or the video, if it is one."""
        return self.image or self.video

    def picture(self, width: int, height: int) -> Any:
        """The background at the output's size, RGB (avatar/background.py draws it)."""
        from ...media.picture import picture

        return picture(self.color, self.image, width, height)


class Music(_Part):
    folder: Path
    """Audio files (mp3, ogg, opus, flac, wav, m4a), played shuffled, crossfaded, each
    brought to `level_lufs`."""
    level_lufs: float = Field(default=-30.0, ge=-50, le=-10)
    """The bed's loudness between texts (integrated, EBU R128); speech is near -18."""
    duck_db: float = Field(default=18.0, ge=6, le=60)
    """How far the bed goes down under speech."""
    attack_ms: float = Field(default=60.0, ge=5, le=2000)
    """How fast it goes down when speech starts (time constant)."""
    release_ms: float = Field(default=700.0, ge=20, le=10_000)
    """How fast it comes back after speech (time constant), after `hold_ms`."""
    hold_ms: float = Field(default=400.0, ge=0, le=10_000)
    """How long it stays down after speech, so that it does not swell between sentences."""
    crossfade_s: float = Field(default=3.0, ge=0, le=20)
    playing: bool = True
    """Whether it plays from the start (a control message starts and stops it)."""


class Scene(_Part):
    background: Background | None = None
    music: Music | None = None
    logo: Logo | None = None
    ai_label: AiLabel | None = None
    lower_third: LowerThird | None = None
    ticker: Ticker | None = None
    clock: Clock | None = None


class SceneError(Exception):
    """The scene file cannot be used; the message names the section and the field."""


def load_scene(settings: SceneSettings) -> tuple[Scene, Path]:
    """The scene to lay (with the AI label as the settings say, unless the file says) and the
    folder its relative paths are taken from."""
    label = AiLabel(enabled=settings.ai_label, text=settings.ai_label_text)
    if settings.file is None:
        return Scene(ai_label=label), Path.cwd()
    path = settings.file
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        scene = Scene.model_validate(raw)
    except OSError as exc:
        raise SceneError(f"scene file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SceneError(f"scene file {path}: not TOML: {exc}") from None
    except ValidationError as exc:
        raise SceneError(f"scene file {path}: " + "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())) from None
    base = path.resolve().parent
    if scene.logo is not None:
        logo = scene.logo.path if scene.logo.path.is_absolute() else base / scene.logo.path
        if not logo.is_file():
            raise SceneError(f"scene file {path}: logo.path: {logo} is not a file")
    bg = scene.background
    if bg is not None and bg.file is not None:
        field = "image" if bg.image is not None else "video"
        file = bg.file if bg.file.is_absolute() else base / bg.file
        if not file.is_file():
            raise SceneError(f"scene file {path}: background.{field}: {file} is not a file")
        scene = scene.model_copy(update={"background": bg.model_copy(update={field: file})})
    if scene.music is not None:
        folder = (scene.music.folder if scene.music.folder.is_absolute()
                  else base / scene.music.folder)
        if not folder.is_dir():
            raise SceneError(f"scene file {path}: music.folder: {folder} is not a folder")
        scene = scene.model_copy(update={"music": scene.music.model_copy(
            update={"folder": folder})})
    if scene.ai_label is None:
        scene = scene.model_copy(update={"ai_label": label})
    return scene, base
