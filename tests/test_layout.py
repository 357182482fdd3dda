"""The package's shape: no import cycle between its modules, nothing installed reaching into
the checkout (tests, bench, harness), and a built wheel that runs without the checkout."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "avatarcast"


def _module(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_pkg else parts), is_pkg


def _imports(path: Path) -> set[str]:
    """Modules this file imports, resolved to absolute names (function-level imports too)."""
    name, is_pkg = _module(path)
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - node.level + 1]
                mod = ".".join(parent + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module(p)[0]: p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in files and i != m} for m, p in files.items()}


def test_no_import_cycle() -> None:
    graph = _graph()
    # A package's __init__ importing its own modules is not a cycle worth flagging here;
    # ours import nothing, which the graph checks like any other module.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = [*stack[stack.index(n):], n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_installed_code_imports_nothing_from_the_checkout() -> None:
    for path in PACKAGE.rglob("*.py"):
        outside = {i for i in _imports(path) if i.split(".")[0] in ("tests", "bench", "harness")}
        assert not outside, f"{path} imports {outside}"


@pytest.mark.timeout(600)
def test_wheel_runs_without_the_checkout(tmp_path: Path) -> None:
    """Build a wheel, install only it (the environment's dependencies stay), and run the
    commands from a directory with no checkout in sight."""
    dist, site = tmp_path / "dist", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(SRC.parent)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(dist.glob("avatarcast-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)], check=True, capture_output=True, timeout=300,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARCAST_")}
    env["PYTHONPATH"] = str(site)  # ahead of the editable install of the checkout

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "avatarcast", *args], cwd=work, env=env,
            capture_output=True, text=True, timeout=300,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import avatarcast; print(avatarcast.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout
    assert where.startswith(str(site)), where
    schema = run("schema")
    assert schema.returncode == 0, schema.stderr
    assert '"avatarcast message"' in schema.stdout
    # prepare runs the face models shipped in the dependencies on the bundled portrait.
    prep = run("prepare", "--image", str(site / "avatarcast" / "avatar" / "avatar.png"),
               "--id", "wheel")
    assert prep.returncode == 0, prep.stderr
    assert (work / "models" / "avatars" / "wheel").is_dir()
    bad = run("prepare", "--image", str(work / "missing.png"), "--id", "x")
    assert bad.returncode == 2 and "source not found" in bad.stderr
