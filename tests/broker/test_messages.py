"""The wire format: what parses, what is refused and why, and that no body, however hostile,
escapes as anything but a message or a MessageError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatarcast.broker.messages import (
    MAX_BODY_BYTES,
    MAX_TEXT_CHARS,
    ControlMessage,
    MessageError,
    SpeakMessage,
    json_schema,
    parse_message,
    to_wire,
)


def test_speak_wire_format() -> None:
    msg = parse_message(b'{"type": "speak", "id": "a1", "text": "Hi", "interrupt": true}')
    assert isinstance(msg, SpeakMessage) and msg.interrupt and msg.v == 1


def test_message_id_property_stands_in_for_a_missing_id() -> None:
    msg = parse_message(b'{"type": "speak", "text": "Hi"}', message_id="amqp-7")
    assert isinstance(msg, SpeakMessage) and msg.id == "amqp-7"


def test_control_wire_format() -> None:
    msg = parse_message(b'{"type": "control", "command": "clear"}')
    assert isinstance(msg, ControlMessage) and msg.command == "clear"


def test_set_wire_format() -> None:
    msg = parse_message(b'{"type": "control", "command": "set", "avatar": "guest", "voice": null}')
    assert isinstance(msg, ControlMessage)
    assert msg.changes() == {"avatar": "guest", "voice": None}  # null: back as configured
    speak = parse_message(_speak(avatar="guest"))
    assert isinstance(speak, SpeakMessage) and speak.avatar == "guest"


@pytest.mark.parametrize("msg", [
    ControlMessage(command="skip"),
    ControlMessage.model_validate({"command": "set", "voice": None, "avatar": "guest"}),
    SpeakMessage(id="x", text="Hi", avatar="guest"),
])
def test_what_is_published_parses_back_the_same(
    msg: SpeakMessage | ControlMessage
) -> None:
    back = parse_message(to_wire(msg))
    assert back == msg
    if isinstance(msg, ControlMessage):
        assert isinstance(back, ControlMessage) and back.changes() == msg.changes()


def _set(**fields: object) -> bytes:
    return json.dumps({"type": "control", "command": "set", **fields}).encode()


def _speak(**fields: object) -> bytes:
    return json.dumps({"type": "speak", "id": "x", "text": "Hi", **fields}).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "speak", "text": "Hi"}', "id"),
        (_speak(text=""), "text"),
        (_speak(text="   "), "blank"),
        (_speak(text="a" * (MAX_TEXT_CHARS + 1)), "text"),
        (b'{"type": "control", "command": "explode"}', "command"),
        (b'{"type": "shout", "text": "x"}', "type"),
        (_speak(v=2), "v"),
        (_speak(colour="red"), "colour"),
        # Strictly typed: no coercion of strings or numbers into booleans, or numbers into text.
        (_speak(interrupt="yes"), "interrupt"),
        (_speak(interrupt=1), "interrupt"),
        (_speak(id=7), "id"),
        (_speak(text=["Hi"]), "text"),
        (_speak(v="1"), "v"),
        # Hostile shapes.
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"type": "speak", "id": "x", "text": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
         "nested too deeply"),
        (b"[" * 100_000 + b"]" * 100_000, "too large"),
        (b'{"type": "speak", "id": "x", "text": "Hi", "v": ' + b"9" * 10_000 + b"}", "number"),
        (_speak(text="bad \ud800 surrogate"), "unicode"),
        (_speak(text="nul \x00 byte"), "control character"),
        (_speak(id="line\nbreak"), "control character"),
        (b" " * (MAX_BODY_BYTES + 1), "too large"),
        (b'{"type": "speak", "id": "x", "id": "y", "text": "Hi"}', "duplicate key"),
        # Avatars and switches.
        (_speak(avatar="../etc"), "avatar"),
        (_speak(avatar=""), "avatar"),
        (_set(), "set needs avatar, animator and/or voice"),
        (_set(animator="gpu"), "animator"),
        (_set(voice="two\nlines"), "control character"),
        (b'{"type": "control", "command": "skip", "avatar": "x"}', "only with the set command"),
        (_set(size=3), "size"),
    ],
)
def test_bad_messages_have_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        parse_message(body)


def test_longest_text_and_plain_whitespace_are_accepted() -> None:
    text = ("Line one.\n\tLine two.\r\n" + "a" * MAX_TEXT_CHARS)[:MAX_TEXT_CHARS]
    msg = parse_message(_speak(text=text))
    assert isinstance(msg, SpeakMessage) and msg.text == text


def test_published_schema_is_current() -> None:
    doc = Path(__file__).parent.parent.parent / "docs" / "messages.schema.json"
    assert json.loads(doc.read_text()) == json_schema(), "regenerate: avatarcast schema"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_speakish = st.fixed_dictionaries(
    {"type": st.sampled_from(["speak", "control", "other"])},
    optional={"id": _json | st.text(), "text": _json | st.text(), "interrupt": _json,
              "voice": _json, "v": _json, "command": _json},
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=300),
    _json.map(lambda v: json.dumps(v).encode()),
    _speakish.map(lambda v: json.dumps(v).encode()),
    _speakish.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
))
def test_any_body_parses_or_has_a_reason(body: bytes) -> None:
    try:
        msg = parse_message(body, message_id="fallback")
    except MessageError as exc:
        assert str(exc)
        return
    assert isinstance(msg, SpeakMessage | ControlMessage)
    if isinstance(msg, SpeakMessage):
        msg.text.encode("utf-8")  # airable: no lone surrogates
        msg.id.encode("utf-8")
