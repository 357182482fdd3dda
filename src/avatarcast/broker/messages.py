"""Wire messages: JSON objects, versioned, validated with pydantic.

``{"type": "speak", "id": "...", "text": "..."}`` and ``{"type": "control", "command": "skip"}``.
The AMQP ``message_id`` property stands in for a missing ``id``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

WIRE_VERSION = 1
MAX_TEXT_CHARS = 5000


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = Field(default=1, description="Wire format version.")


class SpeakMessage(_Message):
    type: Literal["speak"] = "speak"
    id: str = Field(min_length=1, max_length=200, description="Unique id; duplicates air once.")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    voice: str | None = Field(default=None, min_length=1, max_length=200)
    interrupt: bool = Field(default=False, description="Cut whatever is on air and speak now.")

    @field_validator("text")
    @classmethod
    def _has_words(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is blank")
        return v


ControlCommand = Literal["skip", "clear", "pause", "resume"]


class ControlMessage(_Message):
    type: Literal["control"] = "control"
    command: ControlCommand


Message = Annotated[SpeakMessage | ControlMessage, Field(discriminator="type")]
_ADAPTER: TypeAdapter[SpeakMessage | ControlMessage] = TypeAdapter(Message)


class MessageError(ValueError):
    """A message that can never be processed; the text is the dead-letter reason."""


def parse_message(body: bytes, message_id: str | None = None) -> SpeakMessage | ControlMessage:
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError("body must be a JSON object")
    if data.get("type") == "speak" and "id" not in data and message_id:
        data["id"] = message_id
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise MessageError(_reason(exc)) from None


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "invalid message: " + "; ".join(parts)


def json_schema() -> dict[str, Any]:
    schema = _ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "avatarcast message"
    return schema
