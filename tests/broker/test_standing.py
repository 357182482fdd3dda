"""The standing controls a channel keeps in the broker: what pause, resume and set leave in
force, replayed as controls on a fresh daemon; what was not written by us is not replayed."""

from __future__ import annotations

import pytest

from avatarcast.broker.messages import ControlMessage
from avatarcast.broker.standing import Standing


def control(**fields: object) -> ControlMessage:
    return ControlMessage.model_validate({"type": "control", **fields})


def test_pause_resume_and_set_fold_into_one_state() -> None:
    state = Standing()
    assert state.controls() == []
    assert state.apply(control(command="pause"))
    assert not state.apply(control(command="pause"))  # no change: nothing to write
    assert not state.apply(control(command="skip")) and not state.apply(control(command="clear"))
    assert state.apply(control(command="set", voice="alloy", animator="still"))
    assert state.apply(control(command="set", voice=None))  # back to the configured voice
    again = Standing.from_json(state.to_json())
    assert [(c.command, c.changes() if c.command == "set" else None) for c in again.controls()
            ] == [("set", {"animator": "still"}), ("pause", None)]
    assert again.apply(control(command="resume")) and again.controls()[-1].command == "set"


@pytest.mark.parametrize("body", [
    b"[]", b'"paused"', b'{"paused": true, "set": {"avatar": "../etc"}}',
    b'{"paused": true, "set": {"voice": "a\\u0000b"}}', b"\xff",
])
def test_what_we_did_not_write_is_refused(body: bytes) -> None:
    try:
        state = Standing.from_json(body)
    except (ValueError, KeyError):
        return  # read() logs it and starts from a fresh state
    # Whatever is read back can be replayed as valid controls.
    assert all(isinstance(c, ControlMessage) for c in state.controls())


def test_unknown_settings_are_dropped() -> None:
    state = Standing.from_json(b'{"paused": false, "set": {"colour": "red", "voice": 7}}')
    assert state.controls() == []
