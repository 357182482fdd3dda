"""Deaths while handling a message are counted across processes; nothing else is."""

from __future__ import annotations

from pathlib import Path

from avatarcast.broker.attempts import Attempts


def fresh(path: Path) -> Attempts:
    a = Attempts(path)
    a.load()
    return a


def test_only_a_process_dying_mid_message_counts(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    a = fresh(path)
    a.begin("m1")
    a.begin("m1")  # taken up again (after an interrupt, a reconnect): same life, no count
    a.begin("m2")
    a.end("m2")  # settled: not a suspect
    # The process dies here. The next one sees one death for m1, none for m2.
    b = fresh(path)
    assert (b.deaths("m1"), b.deaths("m2")) == (1, 0)
    b.begin("m1")
    c = fresh(path)  # died again
    assert c.deaths("m1") == 2
    c.begin("m1")
    c.end("m1")  # this time it settled (aired, or requeued at a clean stop)
    assert fresh(path).deaths("m1") == 0


def test_an_unreadable_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    path.write_text("{not json")
    assert fresh(path).deaths("x") == 0


def test_an_orderly_stop_releases_what_it_did_not_settle(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    a = fresh(path)
    a.begin("m1")  # died with an earlier process: that death stays counted
    b = fresh(path)
    b.begin("m1")
    b.begin("m2")
    b.release()  # stopped in order with both unsettled (a hung render, a lease lost)
    c = fresh(path)
    assert (c.deaths("m1"), c.deaths("m2")) == (1, 0)


def test_a_torn_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    path.write_bytes(b'{"m1": 2, "m' + b"\xc3")  # cut inside a character
    assert fresh(path).deaths("m1") == 0
