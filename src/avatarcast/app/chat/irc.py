"""IRC lines with IRCv3 message tags, as Twitch sends them:
`@badges=moderator/1;display-name=Ana;id=… :ana!ana@ana.tmi.twitch.tv PRIVMSG #chan :hello`."""

from __future__ import annotations

from dataclasses import dataclass, field

_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
MAX_LINE = 16_384  # tags included (Twitch's own limit is lower: a longer line is hostile)


class IrcError(ValueError):
    """A line that is not IRC."""


@dataclass(frozen=True)
class Line:
    command: str
    params: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    prefix: str = ""

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0]

    @property
    def trailing(self) -> str:
        return self.params[-1] if self.params else ""


def unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            if i + 1 < len(value):
                nxt = value[i + 1]
                out.append(_UNESCAPE.get(nxt, nxt))
            i += 2  # a lone backslash at the end is dropped, as the spec says
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse(raw: str) -> Line:
    line = raw.rstrip("\r\n")
    if not line or len(line) > MAX_LINE:
        raise IrcError("an empty or over-long line")
    tags: dict[str, str] = {}
    if line.startswith("@"):
        head, _, line = line.partition(" ")
        for item in head[1:].split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = unescape(value)
    prefix = ""
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    line = line.lstrip(" ")
    if not line:
        raise IrcError("no command")
    middle, sep, trailing = line.partition(" :")
    if not sep and line.startswith(":"):
        middle, trailing, sep = "", line[1:], ":"
    parts = middle.split()
    if not parts:
        raise IrcError("no command")
    params = tuple(parts[1:]) + ((trailing,) if sep else ())
    return Line(parts[0].upper(), params, tags, prefix)
