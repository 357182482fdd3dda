"""The stream-state machine: legal moves, illegal ones raise, a way back to idle."""

from __future__ import annotations

import pytest

from avatarcast.onair.state import (
    TRANSITIONS,
    IllegalTransition,
    Seen,
    StateMachine,
    StreamState,
)


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


# -- the machine decides ------------------------------------------------------------------

QUIET = Seen(talking=False, fading=False, waiting=False)


def test_nothing_may_start_until_the_encoder_is_up_nor_in_an_error() -> None:
    sm = StateMachine()
    assert not sm.may_start()  # no encoder yet: nothing airs into a void
    assert sm.step(QUIET) is StreamState.ERROR
    sm.encoder(True)
    assert not sm.may_start()  # still in the error until the next step
    assert sm.step(QUIET) is StreamState.IDLE and sm.may_start()
    sm.encoder(False)
    assert sm.state is StreamState.ERROR and not sm.may_start()


def test_step_follows_what_the_tick_showed() -> None:
    sm = StateMachine()
    sm.encoder(True)
    for seen, state in [
        (Seen(talking=False, fading=False, waiting=True), StreamState.PROCESSING),
        (Seen(talking=True, fading=True, waiting=False), StreamState.TRANSITIONING),
        (Seen(talking=True, fading=False, waiting=True), StreamState.TALKING),
        (Seen(talking=False, fading=True, waiting=False), StreamState.TRANSITIONING),
        (QUIET, StreamState.IDLE),
    ]:
        assert sm.step(seen) is state and sm.state is state


def test_out_of_an_error_the_outage_fade_is_processing_and_speech_on_air_raises() -> None:
    sm = StateMachine()
    sm.encoder(True)
    sm.step(Seen(talking=True, fading=False, waiting=False))
    sm.encoder(False)  # the outage cut what was on air: its fade goes on
    sm.encoder(True)
    assert sm.step(Seen(talking=False, fading=True, waiting=False)) is StreamState.PROCESSING
    sm.encoder(False)
    sm.encoder(True)
    with pytest.raises(IllegalTransition, match="ERROR -> TALKING"):
        sm.step(Seen(talking=True, fading=False, waiting=False))
    assert sm.state is StreamState.ERROR
