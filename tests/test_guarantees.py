"""The README's Guarantees name, after each promise, the test that fails when it breaks: each
named test exists, in the file named, so a rename or a removal cannot leave a promise
unchecked while the README still says it is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")}


def test_every_test_the_guarantees_name_exists() -> None:
    section = _section((ROOT / "README.md").read_text(), "Guarantees")
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", section)
    assert len(named) >= 15, named  # the section still maps its promises to tests
    missing = [f"{path}::{name}" for path, name in named
               if not (ROOT / path).is_file() or name not in _tests_in(ROOT / path)]
    assert not missing, f"the README names tests that do not exist: {missing}"


def test_every_promise_names_its_test() -> None:
    # A bullet of the section (a promise) without a test named in it would be a claim only.
    section = _section((ROOT / "README.md").read_text(), "Guarantees")
    body = section.split("**Not promised**")[0]
    bullets = re.split(r"\n\* ", body)[1:]
    unbacked = [b.split("\n")[0] for b in bullets if "`tests/" not in b]
    assert not unbacked, unbacked
