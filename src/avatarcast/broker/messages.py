"""Wire messages: JSON objects, versioned, validated with pydantic.

``{"type": "speak", "id": "...", "text": "..."}``,
``{"type": "ask", "id": "...", "prompt": "..."}``, ``{"type": "control", "command": "skip"}``
and ``{"type": "control", "command": "set", "avatar": "..."}``.
The AMQP ``message_id`` property stands in for a missing ``id``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ..settings import AVATAR_ID_PATTERN, AnimatorName

WIRE_VERSION = 1
MAX_TEXT_CHARS = 5000
# The longest valid message, every character escaped as a JSON surrogate pair, still fits.
MAX_BODY_BYTES = 64 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab and newlines pass


def _printable(v: str, forbidden: re.Pattern[str]) -> str:
    # Lone surrogates never get here: strict str validation refuses them.
    if (m := forbidden.search(v)) is not None:
        raise ValueError(f"contains the control character U+{ord(m.group()):04X}")
    return v


class _Message(BaseModel):
    # Strict: "yes" is not a boolean and 7 is not an id; publishers see their mistake.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    v: Literal[1] = Field(default=1, description="Wire format version.")


AVATAR_DOC = "A prepared avatar's id to speak with; the stream's default avatar if unset."


class SpeakMessage(_Message):
    type: Literal["speak"] = "speak"
    id: str = Field(min_length=1, max_length=200, description="Unique id; duplicates air once.")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    voice: str | None = Field(default=None, min_length=1, max_length=200)
    avatar: str | None = Field(default=None, pattern=AVATAR_ID_PATTERN.pattern,
                               description=AVATAR_DOC)
    interrupt: bool = Field(default=False, description="Cut whatever is on air and speak now.")

    @field_validator("text")
    @classmethod
    def _has_words(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is blank")
        return _printable(v, _CONTROL_IN_TEXT)

    @field_validator("id", "voice")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        return None if v is None else _printable(v, _CONTROL)


MAX_PROMPT_CHARS = 4000
MAX_INTRO_CHARS = 1000


class AskMessage(_Message):
    """A question for the LLM (llm settings); its answer is spoken sentence by sentence as it
    streams in, in the speak queue's order."""

    type: Literal["ask"] = "ask"
    id: str = Field(min_length=1, max_length=200, description="Unique id; duplicates air once.")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    system: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS,
                               description="Instructions for this answer; llm.system if unset.")
    intro: str | None = Field(
        default=None, min_length=1, max_length=MAX_INTRO_CHARS,
        description="Spoken before the answer (\"Maria asks: ...\"), while the LLM begins.")
    voice: str | None = Field(default=None, min_length=1, max_length=200)
    avatar: str | None = Field(default=None, pattern=AVATAR_ID_PATTERN.pattern,
                               description=AVATAR_DOC)
    interrupt: bool = Field(default=False, description="Cut whatever is on air and answer now.")

    @field_validator("prompt", "system", "intro")
    @classmethod
    def _has_words(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("is blank")
        return None if v is None else _printable(v, _CONTROL_IN_TEXT)

    @field_validator("id", "voice")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        return None if v is None else _printable(v, _CONTROL)

    @property
    def text(self) -> str:
        """What the publisher sent (the prompt), for logs and counts."""
        return self.prompt


Utterable = SpeakMessage | AskMessage  # what goes to the speak queue and airs


ControlCommand = Literal["skip", "clear", "pause", "resume", "set", "scene"]
SETTABLE = ("avatar", "animator", "voice")
SceneLayer = Literal["logo", "ai_label", "lower_third", "ticker", "clock", "captions", "music",
                     "background"]
SCENE_FIELDS = ("layer", "visible", "title", "subtitle", "text", "color", "image", "video")


class ControlMessage(_Message):
    """skip, clear, pause, resume; `set`: change the stream's default avatar, animator
    and/or voice from the next utterance on (null: back to the configured one); `scene`:
    show or hide a layer of the scene, or change the lower third's or the ticker's words, from
    the next frame on; or the background behind the person (a colour, a picture, a looping
    video, the scene file's, or hidden: the avatar's own), from the next text on."""

    type: Literal["control"] = "control"
    command: ControlCommand
    avatar: str | None = Field(default=None, pattern=AVATAR_ID_PATTERN.pattern,
                               description="set: the default avatar (a prepared id).")
    animator: AnimatorName | None = Field(default=None, description="set: the default animator.")
    voice: str | None = Field(default=None, min_length=1, max_length=200,
                              description="set: the default voice (the providers' name).")
    layer: SceneLayer | None = Field(default=None, description="scene: the layer to change "
                                     "(music: the music bed under the sound).")
    visible: bool | None = Field(default=None, description="scene: show (true) or hide it "
                                 "(music: play or stop the bed).")
    title: str | None = Field(default=None, min_length=1, max_length=80,
                              description="scene: the lower third's title.")
    subtitle: str | None = Field(default=None, min_length=1, max_length=120,
                                 description="scene: the lower third's subtitle.")
    text: str | None = Field(default=None, min_length=1, max_length=2000,
                             description="scene: the ticker's words.")
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$",
                              description="scene: the background, a solid colour (#rrggbb).")
    image: str | None = Field(default=None, min_length=1, max_length=500,
                              description="scene: the background, a picture: a file in the "
                              "scene file's folder (a path relative to it).")
    video: str | None = Field(default=None, min_length=1, max_length=500,
                              description="scene: the background, a video played in a loop: a "
                              "file in the scene file's folder (a path relative to it).")

    @field_validator("voice", "title", "subtitle", "text", "image", "video")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        return None if v is None else _printable(v, _CONTROL)

    @model_validator(mode="after")
    def _set_fields(self) -> ControlMessage:
        given = [f for f in SETTABLE if f in self.model_fields_set]
        if self.command == "set" and not given:
            raise ValueError("set needs avatar, animator and/or voice")
        if self.command != "set" and given:
            raise ValueError(f"{', '.join(given)}: only with the set command")
        scene = [f for f in SCENE_FIELDS if getattr(self, f) is not None]
        if self.command != "scene" and scene:
            raise ValueError(f"{', '.join(scene)}: only with the scene command")
        if self.command == "scene":
            if self.layer is None or len(scene) < 2:
                raise ValueError("scene needs a layer and visible, title, subtitle, text, "
                                 "color, image or video")
            if (self.title or self.subtitle) and self.layer != "lower_third":
                raise ValueError("title and subtitle: only for the lower_third layer")
            if self.text is not None and self.layer != "ticker":
                raise ValueError("text: only for the ticker layer")
            behind = [f for f in ("color", "image", "video") if getattr(self, f) is not None]
            if behind and self.layer != "background":
                raise ValueError(f"{', '.join(behind)}: only for the background layer")
            if len(behind) > 1:
                raise ValueError(f"background: give one of color, image or video, not "
                                 f"{' and '.join(behind)}")
        return self

    def changes(self) -> dict[str, str | None]:
        """What a set changes: a value, or None for back to the configured one."""
        return {f: getattr(self, f) for f in SETTABLE if f in self.model_fields_set}


Message = Annotated[SpeakMessage | AskMessage | ControlMessage, Field(discriminator="type")]
_ADAPTER: TypeAdapter[SpeakMessage | AskMessage | ControlMessage] = TypeAdapter(Message)


def to_wire(msg: SpeakMessage | AskMessage | ControlMessage) -> bytes:
    """The JSON body of a message. A control message carries only the fields it sets (a
    skip with `"avatar": null` would be refused; a set's null means "as configured")."""
    data = msg.model_dump(mode="json")
    if isinstance(msg, ControlMessage):
        for name in (*SETTABLE, *SCENE_FIELDS):
            if name not in msg.model_fields_set:
                del data[name]
    return json.dumps(data).encode()


class MessageError(ValueError):
    """A message that can never be processed; the text is the dead-letter reason."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise MessageError(f"body is not valid: duplicate key {dup[:50]!r}")
    return data


def decode_body(body: bytes) -> Any:
    """JSON from a body of any shape; every failure is a MessageError with the reason."""
    if len(body) > MAX_BODY_BYTES:
        raise MessageError(f"body too large: {len(body)} bytes (at most {MAX_BODY_BYTES})")
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise MessageError("body is not valid: JSON nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"body is not JSON: {exc}") from None
    except ValueError as exc:  # e.g. a number past the int-string conversion limit
        raise MessageError(f"body is not valid: a number is too long ({exc})"[:300]) from None


def parse_message(
    body: bytes, message_id: str | None = None
) -> SpeakMessage | AskMessage | ControlMessage:
    data = decode_body(body)
    if not isinstance(data, dict):
        raise MessageError("body must be a JSON object")
    if data.get("type") in ("speak", "ask") and "id" not in data and message_id:
        data["id"] = message_id
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise MessageError(invalid_message(exc)) from None


def invalid_message(exc: ValidationError) -> str:
    """One line: each field and what is wrong with it."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        what = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {what}" if loc else what)
    return "invalid message: " + "; ".join(parts)


def json_schema() -> dict[str, Any]:
    schema = _ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "avatarcast message"
    return schema
