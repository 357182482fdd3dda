"""When a scheduled item of the run of show is due: a cron expression (five fields: minute,
hour, day of month, month, day of week; numbers, `*`, lists, ranges and steps, as in crontab;
day of week 0 or 7 is Sunday; when both day fields are restricted, either matches, as cron
does), or an interval ("90s", "15m", "1h30m")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as dtime

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
_INTERVAL = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_SEARCH = 366 * 5 * (1 + 24 + 60)  # steps looked ahead for a match (five years)


class CronError(ValueError):
    pass


def _field(text: str, name: str, lo: int, hi: int) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                first, last = lo, hi
            elif "-" in base:
                a, b = base.split("-", 1)
                first, last = int(a), int(b)
            else:
                first = last = int(base)
                if step_text:
                    last = hi
        except ValueError:
            raise CronError(f"{name}: {part!r} is not a number, range, list or step") from None
        if step < 1 or not lo <= first <= last <= hi:
            raise CronError(f"{name}: {part!r} is outside {lo}-{hi}")
        out.update(range(first, last + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 Sunday .. 6 Saturday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"{text!r}: five fields (minute hour day month weekday), "
                            f"not {len(parts)}")
        sets = [_field(p, n, lo, hi) for p, (n, lo, hi) in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] == "*",
                   parts[4] == "*")

    def matches(self, t: datetime) -> bool:
        return self._on_day(t) and t.hour in self.hours and t.minute in self.minutes

    def _on_day(self, t: datetime) -> bool:
        if t.month not in self.months:
            return False
        day = t.day in self.days
        weekday = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday

    def next_after(self, t: datetime, zone: tzinfo | None = None) -> datetime:
        """The first whole minute after `t` whose wall time in `zone` (t's own by default)
        matches, as an aware datetime in that zone. Minutes are counted in UTC: a time that
        summer time skips never matches, and a wall time the change back repeats matches
        twice (once in each offset), as cron runs it."""
        zone = zone or t.tzinfo or UTC
        at = t.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(MAX_SEARCH):
            local = at.astimezone(zone)
            if not self._on_day(local):  # on to the next day's first minute
                midnight = datetime.combine(local.date() + timedelta(days=1), dtime(0),
                                            tzinfo=zone)
                at = max(at + timedelta(minutes=1), midnight.astimezone(UTC))
            elif local.hour not in self.hours:
                at += timedelta(minutes=60 - local.minute)
            elif local.minute not in self.minutes:
                at += timedelta(minutes=1)
            else:
                return local
        raise CronError("never matches (such as the 31st of February)")


def interval_s(text: str) -> float:
    """"90s", "15m", "1h30m" as seconds (at least 10)."""
    m = _INTERVAL.match(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise CronError(f"{text!r}: an interval such as 90s, 15m or 1h30m")
    h, mi, s = (int(g or 0) for g in m.groups())
    total = h * 3600 + mi * 60 + s
    if total < 10:
        raise CronError(f"{text!r}: at least 10 s")
    return float(total)
