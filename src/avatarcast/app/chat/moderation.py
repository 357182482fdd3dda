"""What may reach the LLM and the air from chat, decided before anything else sees it: a
blocklist that sees through simple evasion (case, accents, spacing, look-alike characters and
digits), links, spam, a length cap, per-user rate limits and a cool-down after an answer, and
duplicate or near-duplicate suppression. Each refusal has a reason (for the lifecycle event and
the metric). Memory is bounded whatever the flood: per-user state and recent texts are kept
for a window and capped in number."""

from __future__ import annotations

import re
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .message import ChatMessage

# Look-alikes folded to the letter they pass for (after NFKD and casefolding): digits and
# signs, and the Cyrillic and Greek letters that look Latin.
_LOOKALIKE = str.maketrans({
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
    # Cyrillic, then Greek
    "\u0430": "a", "\u0432": "b", "\u0435": "e", "\u043a": "k", "\u043c": "m", "\u043d": "h",
    "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0442": "t", "\u0443": "y", "\u0445": "x",
    "\u0456": "i", "\u0458": "j", "\u0455": "s", "\u03b1": "a", "\u03b2": "b", "\u03b5": "e",
    "\u03b9": "i", "\u03ba": "k", "\u03bf": "o", "\u03c1": "p", "\u03c4": "t", "\u03c5": "u",
    "\u03c7": "x", "\u03bd": "v",
})
_SIGNS = {"@": "a", "$": "s", "!": "i", "|": "l", "\u20ac": "e"}
# A sign inside a word ("b!g", "$ale", "a$$et") stands for a letter; at a word's end
# ("great!") it is punctuation.
_SIGN = re.compile(r"[@$!|\u20ac](?=[^\W_]|[@$!|\u20ac])")
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9-]{2,}\.(?:com|net|org|io|gg|tv|"
                   r"ly|me|co|ru|xyz|info|biz|link|app|dev|shop|site|live)\b(?:/\S*)?")
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower case, no accents, look-alikes as the letters they pass for."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SIGN.sub(lambda m: _SIGNS[m.group()], bare).translate(_LOOKALIKE)


def words(text: str) -> list[str]:
    """The folded words; letters spaced or dotted apart ("f r e e", "f.r.e.e") are one word."""
    return _split(text)[0]


def _split(text: str) -> tuple[list[str], list[str]]:
    """(the words, and among them those made of letters spaced apart)."""
    out: list[str] = []
    runs: list[str] = []
    run: list[str] = []
    for w in _WORD.findall(fold(text)):
        if len(w) == 1:
            run.append(w)
            continue
        if run:
            out.append("".join(run))
            runs.append(out[-1])
            run = []
        out.append(w)
    if run:
        out.append("".join(run))
        runs.append(out[-1])
    return out, runs


def _same(word: str, blocked: str) -> bool:
    """The blocked word, or it stretched ("freeeee"): a letter held three times or more may
    stand for one or two of them."""
    if word == blocked:
        return True
    return bool(_HELD.search(word)) and _DOUBLES.sub(r"\1", word) == _DOUBLES.sub(r"\1", blocked)


_HELD = re.compile(r"(.)\1\1")
_DOUBLES = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class Limits:
    max_chars: int = 300
    per_user: int = 3  # messages a user may send within `per_user_window_s`
    per_user_window_s: float = 60.0
    cooldown_s: float = 120.0  # after one of theirs was answered
    duplicate_window_s: float = 300.0
    near_duplicate: float = 0.8  # word-shingle overlap at which two texts are the same
    max_users: int = 10_000  # per-user state kept at most (the oldest goes)
    max_recent: int = 2_000  # recent texts kept for the duplicate check


class Moderator:
    """`check` a message: None (it may go on) or the reason it may not. Not thread-safe: one
    event loop owns it."""

    def __init__(self, blocklist: Iterable[str] = (), limits: Limits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._blocked = [tuple(words(b)) for b in blocklist if words(b)]
        self._users: OrderedDict[str, deque[float]] = OrderedDict()
        self._answered: OrderedDict[str, float] = OrderedDict()
        self._recent: deque[tuple[int, float, frozenset[str]]] = deque()
        self._index: dict[str, set[int]] = {}  # word triple -> the recent texts with it
        self._sizes: dict[int, int] = {}  # a recent text's number of triples
        self._serial = 0

    def check(self, msg: ChatMessage) -> str | None:
        text = msg.text.strip()
        if not text:
            return "empty"
        if len(text) > self.limits.max_chars:
            return "too long"
        if _LINK.search(text) or _LINK.search(fold(text)):
            return "link"
        ws, runs = _split(text)
        if self._blocks(ws, runs):
            return "blocked word"
        if _spam(text, ws):
            return "spam"
        now = self._clock()
        if self.cooling(msg.user):
            return "cool-down"
        if not self._allow_user(msg.user, now):
            return "rate limit"
        if self._duplicate(ws, now):
            return "duplicate"
        return None

    def cooling(self, user: str) -> bool:
        """Whether one of `user`'s messages was answered within cooldown_s."""
        at = self._answered.get(user)
        return at is not None and self._clock() - at < self.limits.cooldown_s

    def blocks(self, text: str) -> bool:
        """Whether `text` (a display name, say) holds a blocked word or phrase."""
        return self._blocks(*_split(text))

    def answered(self, user: str) -> None:
        """One of `user`'s messages went on air: a cool-down begins."""
        self._answered[user] = self._clock()
        self._answered.move_to_end(user)
        while len(self._answered) > self.limits.max_users:
            self._answered.popitem(last=False)

    def _blocks(self, ws: list[str], runs: list[str]) -> bool:
        """A blocked phrase among the words, or a blocked word anywhere in letters spaced
        apart (spacing is deliberate there, and may join a word to its neighbour: "a b a d")."""
        for phrase in self._blocked:
            if len(phrase) == 1 and any(phrase[0] in run for run in runs):
                return True
            n = len(phrase)
            if any(all(_same(w, b) for w, b in zip(ws[i:i + n], phrase, strict=True))
                   for i in range(len(ws) - n + 1)):
                return True
        return False

    def _allow_user(self, user: str, now: float) -> bool:
        times = self._users.pop(user, None) or deque()
        self._users[user] = times  # the most recent user last
        while times and now - times[0] > self.limits.per_user_window_s:
            times.popleft()
        while len(self._users) > self.limits.max_users:
            self._users.popitem(last=False)
        if len(times) >= self.limits.per_user:
            return False
        times.append(now)
        return True

    def _duplicate(self, ws: list[str], now: float) -> bool:
        """Near enough to a recent text (the share of word triples they have in common):
        found through an index from each triple to the recent texts holding it."""
        recent, index = self._recent, self._index
        while recent and (now - recent[0][1] > self.limits.duplicate_window_s
                          or len(recent) > self.limits.max_recent):
            key, _, old = recent.popleft()
            for sh in old:
                holders = index[sh]
                holders.discard(key)
                if not holders:
                    del index[sh]
        mine = _shingles(ws)
        shared: dict[int, int] = {}
        for sh in mine:
            for key in index.get(sh, ()):
                shared[key] = shared.get(key, 0) + 1
        sizes, n, near = self._sizes, len(mine), self.limits.near_duplicate
        for key, common in shared.items():
            if common / (n + sizes[key] - common) >= near:
                return True
        self._serial += 1
        recent.append((self._serial, now, mine))
        sizes[self._serial] = len(mine)
        for sh in mine:
            index.setdefault(sh, set()).add(self._serial)
        while len(sizes) > len(recent):
            sizes.pop(next(iter(sizes)))
        return False


def _shingles(ws: list[str]) -> frozenset[str]:
    if len(ws) < 3:
        return frozenset([" ".join(ws)])
    return frozenset(" ".join(ws[i:i + 3]) for i in range(len(ws) - 2))


def _spam(text: str, ws: list[str]) -> bool:
    """A character repeated a dozen times, mostly symbols, or the same word over and over."""
    if re.search(r"(.)\1{11,}", text):
        return True
    letters = sum(c.isalnum() for c in text)
    if len(text) >= 10 and letters < len(text) / 3:
        return True
    return len(ws) >= 6 and len(set(ws)) <= len(ws) / 4
