"""Handled ids live on disk: a redelivery after a crash is known to the next process, and the
file stays bounded (the newest `capacity` ids are kept, compaction keeps exactly those). Every
id comes back exactly, and a file torn by a crash or a power cut is read, never a failed
start."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import avatarcast
from avatarcast.broker.dedupe import HandledIds

# The checkout under test, for a child process that imports the same package.
SRC = Path(avatarcast.__file__).resolve().parents[1]


def fresh(path: Path, capacity: int = 100) -> HandledIds:
    """What the daemon does at start: a new HandledIds that loads the file."""
    h = HandledIds(path, capacity)
    h.load()
    return h


def known(h: HandledIds, ids: list[str]) -> list[str]:
    return [i for i in ids if i in h]


def lines(path: Path) -> list[str]:
    """The ids the file holds, in order (one JSON string a line)."""
    return [json.loads(x) for x in path.read_bytes().split(b"\n") if x]


def test_ids_added_are_known_to_a_new_instance_loaded_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "handled-ids.log"  # load() makes the state dir
    first = fresh(path)
    assert "m1" not in first
    first.add("m1")
    first.add("m2 with spaces")
    assert known(first, ["m1", "m2 with spaces"]) == ["m1", "m2 with spaces"]

    second = fresh(path)
    assert known(second, ["m1", "m2 with spaces", "m3"]) == ["m1", "m2 with spaces"]
    second.add("m3")
    assert known(fresh(path), ["m1", "m2 with spaces", "m3"]) == ["m1", "m2 with spaces", "m3"]


def test_ids_added_by_a_process_that_is_then_killed_are_known_to_the_next(
    tmp_path: Path,
) -> None:
    """The crash the file exists for: a process adds ids and dies by SIGKILL, no clean exit;
    the next process (this one) loads the file and knows each of them."""
    path = tmp_path / "handled-ids.log"
    ids = [f"msg-{n}" for n in range(20)]
    child = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from avatarcast.broker.dedupe import HandledIds\n"
        "h = HandledIds(Path(sys.argv[1]), 100)\n"
        "h.load()\n"
        "for i in sys.argv[2:]:\n"
        "    h.add(i)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", child, str(path), *ids], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    h = fresh(path)
    assert known(h, ids) == ids
    assert "msg-20" not in h


def test_capacity_keeps_the_newest_ids(tmp_path: Path) -> None:
    path = tmp_path / "handled-ids.log"
    h = fresh(path, capacity=3)
    for i in ["a", "b", "c", "d", "e"]:
        h.add(i)
    everything = ["a", "b", "c", "d", "e"]
    assert known(h, everything) == ["c", "d", "e"]
    # The file still holds all five lines (no compaction before 2 x capacity); loading it keeps
    # the same newest three.
    assert lines(path) == everything
    assert known(fresh(path, capacity=3), everything) == ["c", "d", "e"]


def test_an_id_added_again_counts_as_new(tmp_path: Path) -> None:
    path = tmp_path / "handled-ids.log"
    h = fresh(path, capacity=3)
    for i in ["a", "b", "c", "a", "d"]:  # "a" again: now newer than b and c
        h.add(i)
    assert known(h, ["a", "b", "c", "d"]) == ["a", "c", "d"]
    assert known(fresh(path, capacity=3), ["a", "b", "c", "d"]) == ["a", "c", "d"]


def test_compaction_keeps_exactly_the_live_ids(tmp_path: Path) -> None:
    path = tmp_path / "handled-ids.log"
    h = fresh(path, capacity=3)
    for n in range(6):  # 6 lines = 2 x capacity: not compacted yet
        h.add(f"m{n}")
    assert lines(path) == [f"m{n}" for n in range(6)]
    h.add("m6")  # the 7th line: compacted to the three live ids, oldest first
    assert lines(path) == ["m4", "m5", "m6"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    h.add("m7")  # appending goes on after a compaction
    assert lines(path) == ["m4", "m5", "m6", "m7"]
    everything = [f"m{n}" for n in range(8)]
    assert known(h, everything) == ["m5", "m6", "m7"]
    assert known(fresh(path, capacity=3), everything) == ["m5", "m6", "m7"]


def test_the_file_stays_bounded_and_a_reload_compacts_on(tmp_path: Path) -> None:
    """Many ids through several processes: the file never holds more than 2 x capacity lines,
    and each new process knows exactly the newest `capacity` ids."""
    path = tmp_path / "handled-ids.log"
    added: list[str] = []
    for life in range(5):
        h = fresh(path, capacity=10)
        assert known(h, added) == added[-10:]
        for n in range(23):
            h.add(f"l{life}-{n}")
            added.append(f"l{life}-{n}")
            assert len(lines(path)) <= 20
        assert known(h, added) == added[-10:]
    assert set(lines(path)) >= set(added[-10:])


def test_a_torn_tail_is_skipped_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "handled-ids.log"
    path.write_bytes(_line("m1") + _line("m2") + "\"caf\u00e9".encode()[:-1])  # cut inside "é"
    h = fresh(path)
    assert known(h, ["m1", "m2"]) == ["m1", "m2"]
    # The file was rewritten without the torn line: the next id is a line of its own, not glued
    # to what the crash left.
    h.add("m3")
    assert lines(path) == ["m1", "m2", "m3"]
    assert known(fresh(path), ["m1", "m2", "m3"]) == ["m1", "m2", "m3"]


@pytest.mark.parametrize("tail", [
    b'"m3', b"\xff\xfe", b"\0" * 4096, b"\0" * 100 + b"\n" + b"\0" * 100,
], ids=["json-cut", "not-utf8", "zeros", "zero-lines"])
def test_what_a_power_cut_leaves_is_skipped(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "handled-ids.log"
    path.write_bytes(_line("m1") + _line("m2") + tail)
    h = fresh(path)
    assert known(h, ["m1", "m2"]) == ["m1", "m2"]
    h.add("m3")
    assert lines(path) == ["m1", "m2", "m3"]


@pytest.mark.parametrize("msg_id", [
    "a\u2028b", "a\u2029b", "a\nb", "a\rb", "a\x85b", "a\x0cb", "caf\u00e9 \U0001f600",
    '"quoted"', "  spaced  ", "\\", "a" * 255,
])
def test_every_id_comes_back_exactly(tmp_path: Path, msg_id: str) -> None:
    """An id with a line separator inside was once remembered as two ids: its redelivery aired
    again, and a later message whose id was one of the halves was taken for a duplicate."""
    path = tmp_path / "handled-ids.log"
    fresh(path).add(msg_id)
    h = fresh(path)
    assert msg_id in h
    halves = [p for p in re.split("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", msg_id) if p]
    assert [p for p in halves if p != msg_id and p in h] == []


def test_a_file_from_before_the_json_format_is_read(tmp_path: Path) -> None:
    path = tmp_path / "handled-ids.log"
    path.write_bytes(b"m1\nm2 with spaces\n")  # the raw ids an older version wrote
    h = fresh(path)
    assert known(h, ["m1", "m2 with spaces"]) == ["m1", "m2 with spaces"]
    h.add("m3")
    assert known(fresh(path), ["m1", "m2 with spaces", "m3"]) == ["m1", "m2 with spaces", "m3"]


def _line(msg_id: str) -> bytes:
    return json.dumps(msg_id).encode() + b"\n"
