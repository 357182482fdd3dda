"""The channels file: each channel's settings are the worker's with its own sections over them,
its own queues and state; a file that cannot be used says where and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from avatarcast.app.channels import ChannelsError, channel_queues, load_channels
from avatarcast.settings import BrokerSettings, Settings

GOOD = """
[[channels]]
id = "news-en"
output.rtmp_urls = ["rtmp://live.example/app/KEY-EN"]
avatar.id = "anna"
video = { width = 1280, height = 720 }

[[channels]]
id = "news-de"
output.rtmp_urls = ["rtmp://live.example/app/KEY-DE"]
speech.providers = ["espeak"]
"""


def _base(tmp_path: Path, text: str, **extra: object) -> Settings:
    path = tmp_path / "channels.toml"
    path.write_text(text)
    return Settings(
        channels_file=path, state_dir=tmp_path / "state",
        broker=BrokerSettings(url=SecretStr("amqp://u:s3cret@rabbit:5672/")),
        **extra,  # type: ignore[arg-type]
    )


def test_each_channel_has_its_queues_state_and_sections(tmp_path: Path) -> None:
    en, de = load_channels(_base(tmp_path, GOOD))
    assert (en.channel, de.channel) == ("news-en", "news-de")
    assert en.broker.speak_queue == "avatarcast.speak.news-en"
    assert de.broker.control_queue == "avatarcast.control.news-de"
    assert de.broker.dead_letter_queue == "avatarcast.dead.news-de"
    assert en.broker.events_exchange == de.broker.events_exchange == "avatarcast.events"
    assert en.broker.url.get_secret_value() == "amqp://u:s3cret@rabbit:5672/"
    assert en.state_dir == tmp_path / "state" / "news-en"
    assert en.avatar.id == "anna" and de.avatar.id is None
    assert (en.video.width, en.video.height, de.video.width) == (1280, 720, 1280)
    assert en.speech.providers == ["piper", "espeak"] and de.speech.providers == ["espeak"]
    assert en.output.rtmp_urls[0].get_secret_value().endswith("KEY-EN")
    assert not en.health.enabled  # one HTTP port: the worker's
    assert en.channels_file is None


def test_one_channel_of_the_file(tmp_path: Path) -> None:
    (de,) = load_channels(_base(tmp_path, GOOD, channel="news-de"))
    assert de.channel == "news-de"
    with pytest.raises(ChannelsError, match="'news-fr' is not in"):
        load_channels(_base(tmp_path, GOOD, channel="news-fr"))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[channels]\nid=", "not valid TOML"),
        ("title = 'x'", "expected \\[\\[channels\\]\\] tables"),
        ("[[channels]]\nid = 'News EN'", "channel 1 needs an id"),
        ("[[channels]]\nid = 'a'\n[[channels]]\nid = 'a'", "'a' is listed twice"),
        ("[[channels]]\nid = 'a'\nbroker.url = 'amqp://x'", "'broker' cannot be set per channel"),
        ("[[channels]]\nid = 'a'\nvideo.width = 7", "'a': invalid settings:\n  video.width"),
        ("[[channels]]\nid = 'a'\nvideo.colour = 'red'", "video has no setting colour"),
        ("[[channels]]\nid = 'a'\nvideo = 3", "video must be a table"),
        ("[[channels]]\nid = 'a'\noutput.record_path = 'x.mkv'\n"
         "[[channels]]\nid = 'b'\noutput.record_path = 'x.mkv'",
         "'a' and 'b' stream to the same output"),
    ],
)
def test_a_file_that_cannot_be_used_says_why(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ChannelsError, match=says):
        load_channels(_base(tmp_path, text))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    s = Settings(channels_file=tmp_path / "nope.toml")
    with pytest.raises(ChannelsError, match="No such file"):
        load_channels(s)


def test_channel_ids_make_safe_queue_names() -> None:
    with pytest.raises(ValueError, match="invalid channel id"):
        channel_queues(BrokerSettings(), "../x")
