"""The chat sources `avatarcast chat` reads, as its settings name them."""

from __future__ import annotations

from pydantic import SecretStr

from ...settings import Settings
from .message import ChatSource
from .twitch import TwitchChat
from .webhook import WebhookChat
from .youtube import YouTubeChat


def chat_sources(settings: Settings) -> dict[str, ChatSource]:
    """By platform name; empty when none is configured."""
    c = settings.chat
    out: dict[str, ChatSource] = {}
    t = c.twitch
    if t.channel is not None:
        out["twitch"] = TwitchChat(
            t.channel, nick=t.nick, host=t.host, port=t.port, tls=t.tls,
            token=t.token.get_secret_value() if t.token is not None else None)
    y = c.youtube
    if y.enabled:
        out["youtube"] = YouTubeChat(
            live_chat_id=y.live_chat_id, video_id=None if y.live_chat_id else y.video_id,
            api_key=_secret(y.api_key) if y.api_key is not None else None,
            client_id=None if y.api_key is not None else y.client_id,
            client_secret=None if y.api_key is not None else _secret(y.client_secret),
            refresh_token=None if y.api_key is not None else _secret(y.refresh_token),
            base_url=y.base_url, token_url=y.token_url, daily_quota=y.daily_quota)
    w = c.webhook
    if w.secret is not None:
        out["webhook"] = WebhookChat(w.secret.get_secret_value(), host=w.host, port=w.port,
                                     path=w.path)
    return out


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
