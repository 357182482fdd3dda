"""The command line as a user meets it: a mistake gets one line that says what to do and the
documented exit code (2 for bad input or settings, 3 for an unusable service or model), never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatarcast.app.cli.exits import EXIT_UNAVAILABLE, EXIT_USAGE


def avatarcast(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    base.update({
        "AVATARCAST_STATE_DIR": str(tmp_path / "state"),
        "AVATARCAST_HEALTH__ENABLED": "false",
        "AVATARCAST_VIDEO__WIDTH": "320",
        "AVATARCAST_VIDEO__HEIGHT": "240",
        **env,
    })
    return subprocess.run(
        [sys.executable, "-m", "avatarcast", *args], cwd=tmp_path, env=base,
        capture_output=True, text=True, timeout=120,
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("avatarcast:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_run_without_an_output_refuses_to_start(tmp_path: Path) -> None:
    proc = avatarcast(tmp_path, "run")
    assert proc.returncode == EXIT_USAGE
    assert "no output configured" in one_line(proc)


def test_run_with_a_missing_idle_source_says_no_such_file(tmp_path: Path) -> None:
    proc = avatarcast(tmp_path, "run", AVATARCAST_OUTPUT__RECORD_PATH=str(tmp_path / "o.mkv"),
                      AVATARCAST_AVATAR__IDLE_SOURCE=str(tmp_path / "nope.png"))
    assert proc.returncode == EXIT_USAGE
    line = one_line(proc)
    assert "no such file" in line and "nope.png" in line and "not prepared" not in line


def test_run_with_an_image_without_a_face_says_so(tmp_path: Path) -> None:
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((240, 320, 3), 128, np.uint8))
    proc = avatarcast(tmp_path, "run", AVATARCAST_OUTPUT__RECORD_PATH=str(tmp_path / "o.mkv"),
                      AVATARCAST_AVATAR__IDLE_SOURCE=str(wall))
    assert proc.returncode == EXIT_USAGE
    assert "no face found" in one_line(proc)


def test_run_with_musetalk_and_no_weights_is_unavailable(tmp_path: Path) -> None:
    proc = avatarcast(tmp_path, "run", AVATARCAST_OUTPUT__RECORD_PATH=str(tmp_path / "o.mkv"),
                      AVATARCAST_FACE__ANIMATOR="musetalk",
                      AVATARCAST_FACE__MODELS_DIR=str(tmp_path / "models"))
    assert proc.returncode == EXIT_UNAVAILABLE
    assert "weights" in one_line(proc)


@pytest.mark.services
def test_say_with_a_wrong_password_says_the_login_was_refused(
    tmp_path: Path, rabbitmq: None
) -> None:
    proc = avatarcast(tmp_path, "say", "hello",
                      AVATARCAST_BROKER__URL="amqp://guest:wrong-s3cret@127.0.0.1:5672/")
    assert proc.returncode == EXIT_UNAVAILABLE
    assert "refused the login" in proc.stderr, proc.stderr
    assert "wrong-s3cret" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("control", "set"), "set needs avatar, animator and/or voice"),
        (("control", "skip", "--avatar", "x"), "avatar: only with the set command"),
        (("control", "set", "--voice", "a", "--reset", "voice"), "contradict"),
        (("say", "Hi", "--avatar", "../x"), "avatar"),
    ],
)
def test_a_switch_that_cannot_be_sent_says_why(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    proc = avatarcast(tmp_path, *args)
    assert proc.returncode == EXIT_USAGE
    assert says in one_line(proc)


def test_chat_and_show_with_nothing_to_do_say_what_to_set(tmp_path: Path) -> None:
    proc = avatarcast(tmp_path, "chat")
    assert proc.returncode == EXIT_USAGE
    assert "no chat configured: set AVATARCAST_CHAT__TWITCH__CHANNEL" in one_line(proc)
    proc = avatarcast(tmp_path, "chat", AVATARCAST_CHAT__YOUTUBE__VIDEO_ID="abc")
    assert proc.returncode == EXIT_USAGE and "YouTube needs api_key" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = avatarcast(tmp_path, "show", "missing.toml")
    assert proc.returncode == EXIT_USAGE and "missing.toml: No such file" in one_line(proc)
    (tmp_path / "bad.toml").write_text('[[item]]\nname = "x"\nsay = "hi"\n')
    proc = avatarcast(tmp_path, "show", "bad.toml")
    assert proc.returncode == EXIT_USAGE
    assert "item 'x': give one of cron, every or idle = true" in one_line(proc)
