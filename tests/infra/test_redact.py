"""Redaction: stream keys, passwords and SRT passphrases never reach a log line."""

from __future__ import annotations

import logging

import pytest

from avatarcast.infra.redact import RedactingFormatter, Redactor, secrets_of


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


def test_every_secret_a_settings_model_holds_is_found() -> None:
    from avatarcast.settings import Settings

    s = Settings.model_validate({
        "broker": {"url": "amqp://u:broker-pw-123@h/"},
        "output": {"rtmp_urls": ["rtmp://a/live/key-one", "rtmp://b/live/key-two"]},
        "speech": {"openai_api_key": "sk-speech"}, "llm": {"api_key": "sk-llm"},
        "health": {"token": "console-token"},
    })
    found = set(secrets_of(s))
    assert {"amqp://u:broker-pw-123@h/", "rtmp://a/live/key-one", "rtmp://b/live/key-two",
            "sk-speech", "sk-llm", "console-token"} <= found
    assert "gpt-4o-mini-tts" not in found  # plain settings are not secrets
