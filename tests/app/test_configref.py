"""The README's configuration reference is what the settings model says, and every setting is
described."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from avatarcast.app.cli import configref

ROOT = Path(__file__).parent.parent.parent
README = ROOT / "README.md"


def test_readme_reference_matches_the_settings_model() -> None:
    block = configref.extract_block(README.read_text(encoding="utf-8"))
    assert block is not None, f"README.md lacks {configref.BEGIN} ... {configref.END}"
    assert block == configref.render(), (
        "the configuration reference in README.md is out of date: run `make config-doc`"
    )


def test_every_setting_has_a_description() -> None:
    rows = configref.leaf_settings()
    assert len(rows) > 50
    missing = [row.env for row in rows if not row.description.strip()]
    assert not missing, f"settings without a docstring in settings.py: {missing}"
    sections = configref.sections()
    assert all(s.description for s in sections if s.path), "a section has no docstring"


def test_reference_names_types_bounds_and_defaults() -> None:
    rows = {row.env: row for row in configref.leaf_settings()}
    prefetch = rows["AVATARCAST_BROKER__PREFETCH"]
    assert (prefetch.type, prefetch.default) == ("int, >= 2, <= 1000", "`32`")
    assert rows["AVATARCAST_BROKER__URL"].type == "secret"
    assert rows["AVATARCAST_OUTPUT__RTMP_URLS"].default == "`[]`"
    assert rows["AVATARCAST_SPEECH__PROVIDERS"].default == '`["piper","espeak"]`'
    assert rows["AVATARCAST_VIDEO__PRESET"].type.startswith("one of `ultrafast`, `superfast`")
    assert rows["AVATARCAST_FACE__FP16"].default == "`true`"
    assert rows["AVATARCAST_AVATAR__AVATARS_DIR"].default == "`models/avatars`"
    assert rows["AVATARCAST_OUTPUT__RECORD_PATH"].default == "*unset*"
    idle = rows["AVATARCAST_AVATAR__IDLE_SOURCE"].default
    assert idle == "the bundled portrait (`avatar/avatar.png` in the package)"


def test_write_replaces_only_the_block(tmp_path: Path) -> None:
    target = tmp_path / "doc.md"
    stale = f"{configref.BEGIN}\nSTALE-BLOCK-TEXT\n{configref.END}"
    target.write_text(f"# Doc\n\nbefore\n\n{stale}\n\nafter\n")
    assert configref.main(["--write", str(target)]) == 0
    text = target.read_text()
    assert text.startswith("# Doc\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "STALE-BLOCK-TEXT" not in text
    assert configref.extract_block(text) == configref.render()
    assert configref.main(["--write", str(target)]) == 0
    assert target.read_text() == text


def test_write_without_markers_exits_1_with_one_line(tmp_path: Path) -> None:
    target = tmp_path / "README.md"
    original = README.read_text(encoding="utf-8")
    stripped = original.replace(configref.BEGIN, "").replace(configref.END, "")
    target.write_text(stripped, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "avatarcast.app.cli.configref", "--write", str(target)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "markers" in lines[0], proc.stderr
    assert target.read_text(encoding="utf-8") == stripped


def test_printing_is_the_rendered_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert configref.main([]) == 0
    assert capsys.readouterr().out == configref.render()
