"""Pure units: state machine, clock arithmetic, audio slicing, messages, settings, redaction,
worker thread priority."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from avatarcast.infra.redact import RedactingFormatter, Redactor
from avatarcast.media.audio import FrameSlicer, resample, samples_per_frame
from avatarcast.onair.clock import NS_PER_S, FrameClock
from avatarcast.onair.state import TRANSITIONS, IllegalTransition, StateMachine, StreamState
from avatarcast.settings import SettingsError, load_settings

# -- state machine -------------------------------------------------------------------------


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


# -- clock -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [24, 25, 30, 60])
def test_clock_does_not_drift_over_a_million_ticks(fps: int) -> None:
    clock = FrameClock(fps, now_ns=lambda: 0, t0_ns=123)
    n = 1_000_000
    assert clock.deadline_ns(n) - 123 == n * NS_PER_S // fps
    # The interval between consecutive deadlines never strays from 1/fps by a nanosecond.
    d = np.array([clock.deadline_ns(i) for i in range(n - 1000, n + 1)])
    assert set(np.diff(d)) <= {NS_PER_S // fps, NS_PER_S // fps + 1}
    assert clock.frame_at(clock.deadline_ns(n)) == n
    assert clock.frame_at(clock.deadline_ns(n) - 1) == n - 1


# -- audio -----------------------------------------------------------------------------------


def test_samples_per_frame() -> None:
    assert samples_per_frame(48000, 30) == 1600
    assert samples_per_frame(48000, 25) == 1920
    with pytest.raises(ValueError):
        samples_per_frame(44100, 32)


def test_slicer_gives_exact_frames_and_keeps_every_sample() -> None:
    slicer = FrameSlicer(1600)
    rng = np.random.default_rng(1)
    chunks = [rng.integers(-3000, 3000, size=s, dtype=np.int16) for s in (1000, 2500, 1601, 7)]
    frames = [f for c in chunks for f in slicer.push(c)] + slicer.flush()
    assert all(f.size == 1600 for f in frames)
    total = sum(c.size for c in chunks)
    assert len(frames) == -(-total // 1600)
    joined = np.concatenate(frames)
    assert np.array_equal(joined[:total], np.concatenate(chunks))
    assert not joined[total:].any()
    assert slicer.flush() == []


def test_resample_keeps_duration_and_pitch() -> None:
    t = np.arange(22050) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = resample(tone, 22050, 48000)
    assert out.dtype == np.int16 and abs(out.size - 48000) <= 2
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    assert abs(np.argmax(spectrum) * 48000 / out.size - 440) < 2


# -- settings --------------------------------------------------------------------------------


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.video.fps == 30 and s.audio.sample_rate == 48000 and s.playout.crossfade_frames == 4


def test_invalid_settings_name_the_field(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATARCAST_VIDEO__FPS", "fast")
    monkeypatch.setenv("AVATARCAST_OUTPUT__RTMP_URLS", '["http://example.com/live/SECRETKEY99"]')
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    assert "video.fps (AVATARCAST_VIDEO__FPS)" in text
    assert "output.rtmp_urls" in text
    assert "SECRETKEY99" not in text


def test_settings_cross_checks(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATARCAST_VIDEO__FPS", "7")
    with pytest.raises(SettingsError, match=r"multiple of video\.fps"):
        load_settings()


def test_settings_from_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AVATARCAST_VIDEO__WIDTH=640\nAVATARCAST_PLAYOUT__GAP_MS=0\n")
    s = load_settings()
    assert s.video.width == 640 and s.playout.gap_ms == 0


# -- redaction -------------------------------------------------------------------------------


def test_stream_keys_and_passwords_never_reach_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    url = "rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop"
    amqp = "amqp://user:hunter2hunter2@broker:5672/"
    redact = Redactor([url, amqp])
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(redact, logging.Formatter("%(message)s")))
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "push %s via %s failed: %s",
                               (url, amqp, "key abcd-efgh-ijkl-mnop rejected"), None)
    text = handler.format(record)
    assert "abcd-efgh-ijkl-mnop" not in text and "hunter2hunter2" not in text
    assert "rtmp://a.rtmp.youtube.com/live2/***" in text and "amqp://user:***@broker" in text


def test_srt_passphrases_are_masked() -> None:
    srt = "srt://ingest.example:9000?passphrase=longsecret-42&streamid=live"
    line = f"ffmpeg -f mpegts {srt}: Connection refused"
    for redact in (Redactor([srt]), Redactor()):  # registered, and by pattern alone
        text = redact(line)
        assert "longsecret-42" not in text and "srt://ingest.example:9000?***" in text


def test_unknown_rtmp_urls_are_masked_by_pattern() -> None:
    redact = Redactor()
    text = redact("[f=flv:onfail=ignore]rtmp://x.example/app/KEY-1234|[f=flv]rec.flv")
    assert "KEY-1234" not in text and "rec.flv" in text


def test_env_example_documents_every_setting() -> None:
    from pathlib import Path

    from pydantic import BaseModel

    from avatarcast.settings import Settings

    text = (Path(__file__).parent.parent / ".env.dev.example").read_text()

    def names(model: type[BaseModel], prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out += names(ann, f"{prefix}{name.upper()}__")
            else:
                out.append(prefix + name.upper())
        return out

    missing = [n for n in names(Settings, "AVATARCAST_") if n + "=" not in text]
    assert not missing, f"undocumented settings: {missing}"


# -- worker thread priority ----------------------------------------------------------------




