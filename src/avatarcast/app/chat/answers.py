"""A chosen chat message as what goes on air: an `ask` that names the viewer and repeats what
they wrote (its intro, spoken while the LLM begins), then the LLM's answer; or thanks for a
payment, a subscription or a membership, from templates, with no LLM.

The viewer's words reach the LLM as quoted data inside <chat> tags, under a fixed system prompt
(chat.system) that chat cannot change; the tags in what they wrote are defused, so it cannot
close the quote. What this prevents: a viewer replacing the host's instructions wholesale, or
the message passing as the operator's. What it does not: a model can still be talked round by
a clever enough message (no prompt can rule that out), and the answer itself is the model's:
the blocklist checks the viewer's words and name before they reach the model or the air, not
the model's reply. Choose a model that follows its system prompt, and keep moderation on."""

from __future__ import annotations

import hashlib
import re

from ...broker.messages import MAX_INTRO_CHARS, AskMessage, SpeakMessage
from .message import ChatMessage
from .moderation import Moderator
from .selection import QUESTION, rank
from .settings import ChatSettings

ANONYMOUS = "a viewer"
MAX_NAME_CHARS = 40
_NOT_NAME = re.compile(r"[^\w .'-]+")
_CURRENCIES = {"USD": "dollars", "CAD": "dollars", "AUD": "dollars", "EUR": "euros",
               "GBP": "pounds", "JPY": "yen", "INR": "rupees", "BRL": "reais", "bits": "bits"}


def message_id(msg: ChatMessage) -> str:
    """The wire id of what airs for `msg`: the same on every restart, so the daemon airs it
    once whoever publishes it twice."""
    wire = f"chat:{msg.platform}:{msg.id}"
    if len(wire) <= 200:
        return wire
    return f"chat:{msg.platform}:sha256:{hashlib.sha256(msg.id.encode()).hexdigest()}"


def spoken_name(msg: ChatMessage, moderator: Moderator) -> str:
    """The viewer's name as the host says it: underscores as spaces, no symbols, short; a name
    the blocklist refuses is not said."""
    name = _NOT_NAME.sub(" ", msg.display_name.replace("_", " "))
    name = " ".join(name.split())[:MAX_NAME_CHARS].strip()
    if not name or moderator.blocks(name):
        return ANONYMOUS
    return name


def amount(msg: ChatMessage) -> str:
    value = f"{msg.amount:,.2f}".removesuffix(".00") if msg.amount is not None else ""
    unit = _CURRENCIES.get(msg.currency or "", msg.currency or "")
    if msg.currency == "bits" and value == "1":
        unit = "bit"
    return f"{value} {unit}".strip() or "support"


def quoted(name: str, text: str) -> str:
    """The prompt: who wrote, and what, both inside the quote (a name is the viewer's words
    too), as data the model is told not to obey."""
    def safe(s: str) -> str:
        return s.replace("<", "\u2039").replace(">", "\u203a")

    return ("A viewer wrote in the live chat (quoted between the tags):\n"
            f"<chat>\nName: {safe(name)}\nMessage: {safe(text)}\n</chat>")


def on_air(msg: ChatMessage, moderator: Moderator,
           s: ChatSettings) -> AskMessage | SpeakMessage:
    """What airs for a chosen message."""
    name = spoken_name(msg, moderator)
    fill = {"name": name, "amount": amount(msg), "tier": msg.tier or ""}
    thanks = ""
    if msg.kind == "paid":
        thanks = s.thanks_paid.format_map(fill)
    elif msg.kind == "subscription":
        thanks = s.thanks_subscription.format_map(fill)
    elif msg.kind == "membership":
        thanks = s.thanks_membership.format_map(fill)
    text = " ".join(msg.text.split())
    if not text:
        return SpeakMessage(id=message_id(msg), text=thanks or name)
    template = s.ask_intro if rank(msg) == QUESTION or text.endswith("?") else s.say_intro
    intro = f"{thanks} {template.format_map(fill | {'text': text})}".strip()
    return AskMessage(id=message_id(msg), prompt=quoted(name, text), system=s.system,
                      intro=intro[:MAX_INTRO_CHARS])
