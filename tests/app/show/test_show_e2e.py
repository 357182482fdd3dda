"""`avatarcast show` keeping a real daemon talking: the idle rotation fills each silence with
its next item (a folder's scripts in turn), never the same words twice within no_repeat_s,
not even across a restart of the show; a scheduled item airs at its interval; an operator's
text published meanwhile waits behind at most one of the show's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.daemon import DaemonProc, QueueNames, publish
from harness.events import EventTap

SCHEDULE = """
idle_after_s = 1.5
no_repeat_s = 600

[[item]]
name = "welcome"
idle = true
say = "Welcome to the late show."

[[item]]
name = "stories"
idle = true
folder = "stories"

[[item]]
name = "clock"
every = "10s"
say = "Ten more seconds have gone by."
"""
STORIES = {"1.txt": "Once upon a time there was a small robot.",
           "2.txt": "The robot learned to sing."}


def _show(workdir: Path, queues: QueueNames) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    env.update(queues.env())
    env.update({"AVATARCAST_STATE_DIR": str(workdir / "state"), "PYTHONUNBUFFERED": "1"})
    log = (workdir / "show.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "avatarcast", "show", "show.toml"],
                            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.services
def test_the_show_fills_silences_without_repeating_itself_and_keeps_its_schedule(
    tmp_path: Path, queues: QueueNames,
) -> None:
    (tmp_path / "show.toml").write_text(SCHEDULE)
    (tmp_path / "stories").mkdir()
    for name, text in STORIES.items():
        (tmp_path / "stories" / name).write_text(text)
    transcript = tmp_path / "aired.jsonl"
    daemon = DaemonProc(tmp_path / "d", queues,
                        {"AVATARCAST_CAPTIONS__TRANSCRIPT_PATH": str(transcript)})
    show = None
    try:
        daemon.wait_for(lambda s: s["speech_ready"] and s["broker_connected"], 60, "ready")
        with EventTap(queues.events) as tap:
            show = _show(tmp_path, queues)
            tap.wait_for(lambda ev: any(e["event"] == "on_air" and "stories" in e["id"]
                                        for e in ev), 60, "a story on air")
            sent = time.time()
            publish(queues.speak, {"type": "speak", "id": "op-1", "text": "Operator here."})
            tap.wait_for(lambda ev: any(e["event"] == "finished" and e["id"] == "op-1"
                                        for e in ev), 60, "the operator's text")
            tap.wait_for(lambda ev: sum(e["event"] == "finished" and "clock" in e["id"]
                                        for e in ev) >= 2, 60, "the clock twice")
            time.sleep(3)  # (silences: the rotation has said everything lately)
            events = list(tap.events)
        show.send_signal(signal.SIGTERM)
        assert show.wait(20) == 0
        with EventTap(queues.events) as tap:  # started again: it remembers what it said
            show = _show(tmp_path, queues)
            tap.wait_for(lambda ev: any(e["event"] == "show.skipped" for e in ev), 30,
                         "a silence with nothing new to say")
            assert not [e for e in tap.events if e["event"] == "show.published"]
        assert daemon.stop() == 0
    finally:
        daemon.kill()
        if show is not None:
            show.kill()
            show.wait()
    aired = [json.loads(x) for x in transcript.read_text().splitlines()]
    said = [" ".join(w[2] for w in e["words"]) for e in aired]
    idle = [s for s in said if "Ten more seconds" not in s and s != "Operator here."]
    assert sorted(idle) == sorted(["Welcome to the late show.", *STORIES.values()]), said
    assert said.count("Ten more seconds have gone by.") >= 2
    # The operator's text waited behind at most one of the show's (the queue's one place).
    on_air = [e for e in events if e["event"] == "on_air" and e["at"] >= sent]
    ahead = [e["id"] for e in on_air[:[e["id"] for e in on_air].index("op-1")]]
    assert len(ahead) <= 1, ahead
    skipped = [e["reason"] for e in events if e["event"] == "show.skipped"]
    assert skipped and set(skipped) == {"everything was said lately"}
