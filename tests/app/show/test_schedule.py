"""The run of show's file and its times: crontab lines (lists, ranges, steps, either day field),
intervals, and one clear line naming the item and the field for a file that cannot be a show;
long scripts cut into texts the wire takes; the memory of what was said, bounded by its window."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from avatarcast.app.show.content import Memory, fingerprint, parts
from avatarcast.app.show.cron import Cron, CronError, interval_s
from avatarcast.app.show.schedule import ScheduleError, load

LISBON = ZoneInfo("Europe/Lisbon")


def test_cron_lines() -> None:
    t = datetime(2026, 12, 4, 2, 40, tzinfo=LISBON)  # a Friday
    assert Cron.parse("0 * * * *").next_after(t) == t.replace(hour=3, minute=0)
    assert Cron.parse("*/15 9-17 * * 1-5").next_after(t) == t.replace(hour=9, minute=0)
    assert Cron.parse("45 2 * * *").next_after(t) == t.replace(minute=45)
    # Either day field when both are restricted: the 1st, or a Sunday (the 6th).
    assert Cron.parse("30 8 1 * 0").next_after(t) == t.replace(day=6, hour=8, minute=30)
    assert Cron.parse("0 0 29 2 *").next_after(t) == datetime(2028, 2, 29, tzinfo=LISBON)
    assert Cron.parse("0 12 * * 7").next_after(t).day == 6  # 7 is Sunday too
    # Wall time: 9:00 stays 9:00 across the change of summer time (29 March 2026).
    spring = datetime(2026, 3, 28, 10, 0, tzinfo=LISBON)
    assert Cron.parse("0 9 * * *").next_after(spring).hour == 9
    # 01:30 does not exist on 29 March (01:00 -> 02:00): that day has none.
    assert Cron.parse("30 1 * * *").next_after(spring) == datetime(2026, 3, 30, 1, 30,
                                                                   tzinfo=LISBON)
    # The hour the change back repeats (25 October, 02:00 -> 01:00) runs twice: a quarter
    # of an hour after 01:45 in summer time comes 01:00 in winter time.
    fall = datetime(2026, 10, 25, 1, 45, tzinfo=LISBON)  # (the first 01:45: +01:00)
    after = Cron.parse("*/15 * * * *").next_after(fall)
    assert (after.hour, after.minute, after.utcoffset()) == (1, 0, timedelta(0))
    assert after.timestamp() - fall.timestamp() == 15 * 60
    for bad in ("* * * *", "61 * * * *", "a * * * *", "*/0 * * * *", "5-2 * * * *"):
        with pytest.raises(CronError):
            Cron.parse(bad)
    with pytest.raises(CronError, match="never"):
        Cron.parse("0 0 31 2 *").next_after(t)


def test_intervals() -> None:
    assert interval_s("90s") == 90 and interval_s("15m") == 900 and interval_s("1h30m") == 5400
    for bad in ("", "5s", "10", "1d", "m"):
        with pytest.raises(CronError):
            interval_s(bad)


def _file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "show.toml").write_text(text)
    return tmp_path / "show.toml"


def test_a_file_that_cannot_be_a_show_is_one_clear_line(tmp_path: Path) -> None:
    cases = {
        '[[item]]\nname = "a"\nsay = "hi"\n': "item 'a': give one of cron, every or idle",
        '[[item]]\nname = "a"\nidle = true\n': "item 'a': give one of say, file, folder",
        '[[item]]\nname = "a"\nsay = "hi"\ncron = "61 * * * *"\n': "minute: '61' is outside",
        '[[item]]\nname = "a"\nsay = "hi"\nevery = "2s"\n': "at least 10 s",
        '[[item]]\nname = "a"\nsay = "hi"\ncron = "0 0 31 2 *"\n': "never matches",
        '[[item]]\nname = "a"\nsay = "hi"\nidle = true\nsays = 1\n': "item 'a': says: Extra",
        'timezone = "Mars/Base"\n[[item]]\nname = "a"\nsay = "hi"\nidle = true\n':
            "not an IANA time zone",
        '[[item]]\nname = "a"\nsay = "x"\nidle = true\n[[item]]\nname = "a"\nsay = "y"\n'
        'idle = true\n': "item names must differ: a",
        '[[item]]\nname = "a"\nfile = "nope.txt"\nidle = true\n': "nope.txt is not a file",
        'item = [': "not TOML",
        "": "item: ",
    }
    for text, expected in cases.items():
        with pytest.raises(ScheduleError, match=None) as info:
            load(_file(tmp_path, text))
        assert expected in str(info.value) and "\n" not in str(info.value), (text, info.value)
    with pytest.raises(ScheduleError, match="No such file"):
        load(tmp_path / "missing.toml")


def test_long_scripts_are_cut_between_paragraphs_then_sentences() -> None:
    para = "One sentence here. " * 200  # 3800 characters
    out = parts(f"{para}\n\n{para}", limit=5000)
    assert len(out) == 2 and all(len(p) <= 5000 for p in out)
    long = "Word " * 3000
    assert all(len(p) <= 5000 for p in parts(long)) and " ".join(parts(long)).split() == \
        long.split()


def test_the_memory_of_what_was_said_is_its_window(tmp_path: Path) -> None:
    m = Memory(tmp_path / "show.json", no_repeat_s=60)
    m.said("Welcome to the show!", now=1000.0)
    assert m.recent("welcome, to the SHOW", now=1030.0)  # the same words
    assert not m.recent("Welcome to the show!", now=1061.0)
    m.said("Another line.", now=1100.0)  # the first is forgotten now
    assert fingerprint("Welcome to the show!") not in m.aired
    again = Memory(tmp_path / "show.json", no_repeat_s=60)
    again.load()
    assert again.recent("Another line.", now=1110.0)
    (tmp_path / "show.json").write_text("{broken")
    broken = Memory(tmp_path / "show.json", no_repeat_s=60)
    broken.load()  # a warning, not a crash
    assert broken.aired == {}
