"""The motion on air: every tick's frame moved by the channel's track, idle and speech alike,
the state read from the stream; a failure in drawing leaves the picture on air unmoved."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from avatarcast.avatar.alive.driver import Activity, MotionDriver
from avatarcast.avatar.alive.stage import Enliven, draw
from avatarcast.media.audio import silence
from avatarcast.media.cues import Cue
from avatarcast.media.idle import IdleCycle
from avatarcast.onair.segment import Segment
from avatarcast.onair.state import StreamState
from avatarcast.onair.tick import TickOutput
from avatarcast.settings import AliveSettings

from .conftest import Shot

FPS = 30


def test_idle_and_speech_frames_are_moved_by_one_track(shot: Shot) -> None:
    idle = IdleCycle([shot.frame], shot.rig)
    state = [StreamState.IDLE]
    stage = Enliven(AliveSettings(), FPS, lambda: state[0])
    reference = MotionDriver(AliveSettings(), FPS)
    seg = Segment("s", 0)
    for n in range(90):
        speaking = 30 <= n < 60
        state[0] = StreamState.TALKING if speaking else StreamState.IDLE
        cue = Cue(nod=0.8) if speaking else None
        out = TickOutput(shot.frame, silence(1600), seg if speaking else None, shown=idle,
                         cue=cue)
        stage(n, out)
        expected = reference.at(n, Activity.SPEAKING if speaking else Activity.IDLE, cue)
        assert np.array_equal(out.frame, draw(shot.frame, shot.rig, 0, expected))
    assert not np.array_equal(out.frame, shot.frame)  # the picture did move


def test_thinking_is_what_the_stream_prepares_with_nothing_on_air(shot: Shot) -> None:
    idle = IdleCycle([shot.frame], shot.rig)
    stage = Enliven(AliveSettings(), FPS, lambda: StreamState.PROCESSING)
    for n in range(60):
        stage(n, TickOutput(shot.frame, silence(1600), shown=idle))
    assert stage.driver._glance.value > 0.5


def test_a_picture_without_a_rig_airs_as_it_is(shot: Shot) -> None:
    plain = IdleCycle([shot.frame])
    stage = Enliven(AliveSettings(), FPS, lambda: StreamState.IDLE)
    out = TickOutput(shot.frame, silence(1600), shown=plain)
    stage(40, out)
    assert out.frame is shot.frame


def test_a_failure_in_drawing_is_said_once_and_the_picture_stays_on_air(
    shot: Shot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    idle = IdleCycle([shot.frame], shot.rig)
    stage = Enliven(AliveSettings(), FPS, lambda: StreamState.IDLE)

    def broken(*args: object) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr("avatarcast.avatar.alive.stage.move_body", broken)
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            out = TickOutput(shot.frame, silence(1600), shown=idle)
            stage(n, out)
            assert out.frame is shot.frame
    assert stage.failed == "ValueError: a bug"
    assert sum("motion failed" in r.getMessage() for r in caplog.records) == 1
