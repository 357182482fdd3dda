"""The stream-state machine: legal moves, illegal ones raise, a way back to idle."""

from __future__ import annotations

import pytest

from avatarcast.onair.state import TRANSITIONS, IllegalTransition, StateMachine, StreamState


def test_legal_path_and_callbacks() -> None:
    seen: list[tuple[StreamState, StreamState]] = []
    sm = StateMachine(lambda a, b, r: seen.append((a, b)))
    for s in ("PROCESSING", "TRANSITIONING", "TALKING", "TRANSITIONING", "IDLE", "ERROR", "IDLE"):
        sm.transition(StreamState[s])
    assert sm.state is StreamState.IDLE
    assert seen[0] == (StreamState.IDLE, StreamState.PROCESSING)
    assert len(seen) == 7


def test_illegal_transitions_raise() -> None:
    sm = StateMachine()
    sm.transition(StreamState.ERROR)
    with pytest.raises(IllegalTransition, match="ERROR -> TALKING"):
        sm.transition(StreamState.TALKING)
    assert sm.state is StreamState.ERROR
    with pytest.raises(IllegalTransition):
        sm.transition(StreamState.TRANSITIONING)


def test_every_state_has_a_way_back_to_idle() -> None:
    for state in StreamState:
        assert state is StreamState.IDLE or StreamState.IDLE in TRANSITIONS[state]
