"""Channels: several streams from one set of settings, each with its own queues, outputs,
avatar, voice and picture.

A channels file (TOML) lists them; every table overrides the worker's settings for its
channel, section by section:

    [[channels]]
    id = "news-en"
    output.rtmp_urls = ["rtmp://live.example/app/KEY-EN"]
    avatar.id = "anna"

    [[channels]]
    id = "news-de"
    output.rtmp_urls = ["rtmp://live.example/app/KEY-DE"]
    speech.piper_model = "voices/de_DE-thorsten-medium.onnx"

A channel's queues are the worker's queue names with `.<id>` appended (avatarcast.speak.news-en,
avatarcast.control.news-en, avatarcast.dead.news-en); publishers reach it by that name on the
default exchange (`avatarcast say --channel news-en`). Its state (handled ids, attempts) lives
in `state_dir/<id>`. Lifecycle events of every channel share the events exchange and carry
the channel's id.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..infra.errors import UserError
from ..settings import (
    CHANNEL_ID_PATTERN as CHANNEL_ID,
)
from ..settings import (
    BrokerSettings,
    Settings,
    describe_validation_error,
)

# What a channel may set for itself; the broker, the HTTP port and logging are the worker's.
CHANNEL_SECTIONS = ("output", "video", "audio", "avatar", "playout", "speech", "llm", "face",
                    "captions", "shutdown")


class ChannelsError(UserError):
    """The channels file cannot be used; the text says where and why."""


def channel_queues(broker: BrokerSettings, channel: str) -> BrokerSettings:
    """The broker settings of one channel: its own speak, control and dead-letter queues."""
    if not CHANNEL_ID.match(channel):
        raise ValueError(f"invalid channel id {channel!r}: use 1-40 lowercase letters, digits, "
                         "'_' or '-', starting with a letter or digit")
    return broker.model_copy(update={
        "single_active_consumer": True,
        "speak_queue": f"{broker.speak_queue}.{channel}",
        "control_queue": f"{broker.control_queue}.{channel}",
        "dead_letter_queue": f"{broker.dead_letter_queue}.{channel}",
    })


def for_channel(base: Settings, channel: str, overrides: dict[str, Any]) -> Settings:
    """The full settings of one channel: the worker's, with the channel's sections over them."""
    data = base.model_dump()  # SecretStr values stay SecretStr objects
    for section, values in overrides.items():
        if section not in CHANNEL_SECTIONS:
            raise ChannelsError(f"channel {channel!r}: {section!r} cannot be set per channel "
                                f"(only {', '.join(CHANNEL_SECTIONS)})")
        if not isinstance(values, dict):
            raise ChannelsError(f"channel {channel!r}: {section} must be a table")
        known = type(getattr(base, section)).model_fields
        if unknown := sorted(set(values) - set(known)):
            raise ChannelsError(f"channel {channel!r}: {section} has no setting "
                                f"{', '.join(unknown)}")
        data[section] = {**data[section], **values}
    data["broker"] = channel_queues(base.broker, channel).model_copy(
        update={"heartbeat_s": base.fleet.heartbeat_s})
    data["state_dir"] = base.state_dir / channel
    data["channel"] = channel
    data["channels_file"] = None
    # Each channel's HTTP surface is the worker's (one port for all of them).
    data["health"] = base.health.model_copy(update={"enabled": False})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ChannelsError(f"channel {channel!r}: " + describe_validation_error(exc)) from None


def load_channels(base: Settings) -> list[Settings]:
    """Every channel of `base.channels_file` (only `base.channel` when it is set)."""
    path = base.channels_file
    if path is None:
        raise ChannelsError("no channels file: set AVATARCAST_CHANNELS_FILE")
    try:
        doc = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ChannelsError(f"channels file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChannelsError(f"channels file {path} is not valid TOML: {exc}") from None
    tables = doc.get("channels")
    if set(doc) - {"channels"} or not isinstance(tables, list) or not tables:
        raise ChannelsError(f"channels file {path}: expected [[channels]] tables and nothing "
                            "else")
    channels: list[Settings] = []
    seen: set[str] = set()
    for i, table in enumerate(tables):
        cid = table.get("id")
        if not isinstance(cid, str) or not CHANNEL_ID.match(cid):
            raise ChannelsError(f"channels file {path}: channel {i + 1} needs an id of 1-40 "
                                "lowercase letters, digits, '_' or '-'")
        if cid in seen:
            raise ChannelsError(f"channels file {path}: channel {cid!r} is listed twice")
        seen.add(cid)
        overrides = {k: v for k, v in table.items() if k != "id"}
        channels.append(for_channel(base, cid, overrides))
    if base.channel is not None:
        channels = [c for c in channels if c.channel == base.channel]
        if not channels:
            raise ChannelsError(f"channel {base.channel!r} is not in {path} "
                                f"({', '.join(sorted(seen))})")
    outputs: dict[str, str] = {}
    for c in channels:
        for target in c.output.destinations():
            if (other := outputs.get(target)) is not None:
                raise ChannelsError(f"channels {other!r} and {c.channel!r} stream to the same "
                                    "output")
            outputs[target] = c.channel or ""
    return channels
