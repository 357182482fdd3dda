"""The configuration reference: every setting as a Markdown table, generated from the settings
model (names, types, bounds, defaults and the fields' docstrings).

``python -m avatarcast.app.cli.configref`` prints it; ``--write README.md`` replaces the
text between ``<!-- settings:begin -->`` and ``<!-- settings:end -->`` in that file
(``make config-doc``).
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from ...settings import Settings

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
ENV_PREFIX = "AVATARCAST_"
ENV_DELIMITER = "__"

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # the avatarcast package
# Defaults that are files inside the installed package, by what they are.
BUNDLED = {"avatar/avatar.png": "the bundled portrait"}

_SIMPLE = {bool: "bool", int: "int", float: "float", str: "str", Path: "path", SecretStr: "secret"}
_PLURAL = {"bool": "bools", "int": "ints", "float": "floats", "str": "strings", "path": "paths",
           "secret": "secrets"}
_BOUNDS: tuple[tuple[type[Any], str, str], ...] = (
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.MinLen, "min_length", "length >="),
    (annotated_types.MaxLen, "max_length", "length <="),
)


@dataclass(frozen=True)
class Row:
    env: str
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class Section:
    path: str  # dotted name of the section ("" for the top level)
    description: str
    rows: tuple[Row, ...]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _without_none(annotation: Any) -> tuple[Any, bool]:
    """The annotation without `| None`, and whether None was allowed."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) < len(get_args(annotation)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return annotation, False


def _code(value: object) -> str:
    return f"`{value}`"


def _choices(annotation: Any) -> str:
    return ", ".join(_code(v) for v in get_args(annotation))


def describe_type(annotation: Any) -> str:
    """A readable name for a field's type: `int`, `path`, `one of `a`, `b``, ..."""
    annotation, _ = _without_none(annotation)
    if get_origin(annotation) is Literal:
        return "one of " + _choices(annotation)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if get_origin(item) is Literal:
            return "JSON list, each one of " + _choices(item)
        inner = describe_type(item)
        return "JSON list of " + _PLURAL.get(inner, inner)
    if annotation in _SIMPLE:
        return _SIMPLE[annotation]
    return str(getattr(annotation, "__name__", annotation))


def describe_bounds(field: FieldInfo) -> str:
    """Field constraints as ">= 2, <= 1000" ("" when there are none)."""
    out = []
    for meta in field.metadata:
        for kind, attr, symbol in _BOUNDS:
            if isinstance(meta, kind):
                out.append(f"{symbol} {getattr(meta, attr)}")
    return ", ".join(out)


def _env_value(value: object) -> str:
    """A value as one would write it in the environment."""
    if isinstance(value, SecretStr):
        # Only defaults written in the code are shown: public, not anybody's secret.
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps([_env_value(v) for v in value], separators=(",", ":"))
    if isinstance(value, Path):
        return value.as_posix()
    return str(value)


def describe_default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "*unset*"
    if isinstance(value, Path) and value.is_absolute():
        try:
            inside = value.resolve().relative_to(PACKAGE_DIR).as_posix()
        except ValueError:
            pass
        else:
            what = BUNDLED.get(inside, "a file")
            return f"{what} ({_code(inside)} in the package)"
    text = _env_value(value)
    return _code(text) if text else '`""`'


def _one_line(text: str | None) -> str:
    """A description as one table cell: on one line, `|` escaped, and `<` outside code spans
    escaped so that Markdown does not take `<dir>` for an HTML tag."""
    parts = " ".join((text or "").split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def sections(model: type[BaseModel] = Settings, path: str = "", env: str = ENV_PREFIX,
             description: str = "") -> list[Section]:
    """The model's own leaf settings as one section, then each nested model's, depth first."""
    rows: list[Row] = []
    nested: list[Section] = []
    for name, field in model.model_fields.items():
        sub = _nested_model(field.annotation)
        if sub is not None:
            nested += sections(sub, f"{path}.{name}" if path else name,
                               f"{env}{name.upper()}{ENV_DELIMITER}", _one_line(field.description))
            continue
        kind = describe_type(field.annotation)
        bounds = describe_bounds(field)
        rows.append(Row(
            env=f"{env}{name.upper()}",
            type=f"{kind}, {bounds}" if bounds else kind,
            default=describe_default(field),
            description=_one_line(field.description),
        ))
    own = [Section(path, description, tuple(rows))] if rows else []
    return own + nested


def leaf_settings(model: type[BaseModel] = Settings) -> list[Row]:
    return [row for section in sections(model) for row in section.rows]


def render(model: type[BaseModel] = Settings) -> str:
    """The reference as Markdown: one table per section, each under a small heading."""
    blocks = []
    for section in sections(model):
        title = f"`{section.path}`" if section.path else "General"
        if section.description:
            title += f": {section.description.rstrip('.')}"
        lines = [f"### {title}", "", "| Variable | Type | Default | Description |",
                 "| --- | --- | --- | --- |"]
        lines += [f"| `{r.env}` | {r.type} | {r.default} | {r.description} |"
                  for r in section.rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _markers(text: str) -> tuple[int, int] | None:
    """Where the generated text starts and ends (after BEGIN's line, at END)."""
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        return None
    return begin + len(BEGIN), end


def extract_block(text: str) -> str | None:
    """The text between the markers, without the blank lines around it; None without them."""
    span = _markers(text)
    return None if span is None else text[span[0]:span[1]].strip("\n") + "\n"


def replace_block(text: str, generated: str) -> str | None:
    span = _markers(text)
    if span is None:
        return None
    return text[:span[0]] + "\n\n" + generated + "\n" + text[span[1]:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m avatarcast.app.cli.configref",
        description="Print the configuration reference (Markdown), or write it into a file "
        f"between {BEGIN} and {END}.",
    )
    parser.add_argument("--write", type=Path, metavar="FILE",
                        help="replace the text between the markers in FILE")
    args = parser.parse_args(argv)
    generated = render()
    if args.write is None:
        sys.stdout.write(generated)
        return 0
    target: Path = args.write
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{target}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    new = replace_block(text, generated)
    if new is None:
        print(f"{target}: no {BEGIN} ... {END} markers; add them where the reference goes",
              file=sys.stderr)
        return 1
    if new != text:
        target.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
