"""The README's reference sections, generated from the code so they cannot drift.

`python -m os_rerank.docgen` rewrites the marked regions of README.md (`<!-- name -->` ... `<!-- /name -->`):
- `exit-statuses`: the exit-status table (errors.ExitStatus and its meanings),
- `commands`: every command's `--help`, from the argparse parser `cli` runs,
- `config`: every configuration key with its type, default and description (the pydantic models' fields).
`--check` changes nothing and exits 1 when the README differs; tests/test_docs.py runs the same comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .errors import exit_status_table

README = Path(__file__).resolve().parent.parent / "README.md"
HELP_COLUMNS = 100  # --help wraps to the terminal; the README's copy wraps here on every machine
# argparse's help layout changes between Python versions (3.13 shows a metavar once for `-c, --config FILE`): the
# README's `commands` region is written, and checked, with this one (pyproject's mypy python_version).
HELP_PYTHON = (3, 11)


def command_reference() -> str:
    """Every command's `--help`, each in a collapsed block, in the order `os-rerank --help` lists them."""
    from .cli import build_parser

    blocks = []
    with _columns(HELP_COLUMNS):
        for prog, parser in _commands(build_parser()):
            blocks.append(f"<details><summary><code>{prog}</code></summary>\n\n```text\n"
                          f"{parser.format_help().rstrip()}\n```\n\n</details>")
    return "\n\n".join(blocks)


def _commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(prog, parser) of every listed sub-command, depth first (`endpoint`, then `endpoint deploy`...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                yield sub.prog, sub
                yield from _commands(sub)


@contextmanager
def _columns(width: int) -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def config_reference() -> str:
    """A table of every configuration key: type, default, description."""
    from .config import Config

    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    rows += [f"| `{key}` | {_cell(kind)} | {_cell(default)} | {_cell(text)} |"
             for key, kind, default, text in _fields(Config, "")]
    return "\n".join(rows)


def _fields(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, str, str]]:
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        key = f"{prefix}{name}"
        sections = _models(info.annotation)
        if sections:
            yield key, "section" + (" or null" if _optional(info.annotation) else ""), _default(info), \
                info.description or ""
            for section in sections:
                which = _discriminator(section)
                for sub_key, kind, default, text in _fields(section, f"{key}."):
                    yield sub_key, kind, default, f"({which}) {text}" if which and not sub_key.endswith(".type") \
                        else text
            continue
        yield key, _type_text(info.annotation), _default(info), info.description or ""


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation allows (several for a discriminated union such as opensearch.auth)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) is Annotated:
        return _models(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _models(arg)]
    return []


def _discriminator(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return f"type {get_args(field.annotation)[0]}"


def _optional(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        return _optional(get_args(annotation)[0])
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


_NAMES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}


def _type_text(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_text(args[0])
    if origin in (Union, types.UnionType):
        kinds = [_type_text(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return " \\| ".join(f"`{v}`" for v in args)
    if origin is list:
        return f"list of {_type_text(args[0])}"
    if origin is dict:
        return f"map of {_type_text(args[0])} to {_type_text(args[1])}"
    if annotation.__class__.__name__ == "SecretStr" or annotation is Any:
        return "secret"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(info: Any) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return "null"
    if isinstance(value, Path):
        value = str(value)
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    """`text` safe inside a markdown table cell."""
    return re.sub(r"(?<!\\)\|", r"\\|", text.replace("\n", " "))


REGIONS: dict[str, Callable[[], str]] = {
    "exit-statuses": exit_status_table,
    "commands": command_reference,
    "config": config_reference,
}


def render_readme(text: str, names: tuple[str, ...] | None = None) -> tuple[str, list[str]]:
    """`text` with the marked regions `names` (default: all) regenerated, and the names of those that changed.

    A region named in REGIONS but missing from the text is an error: the README must keep its markers.
    """
    changed = []
    for name, make in REGIONS.items():
        if names is not None and name not in names:
            continue
        found = re.search(rf"<!-- {re.escape(name)} -->\n.*?<!-- /{re.escape(name)} -->", text, re.S)
        if found is None:
            raise ValueError(f"README.md has no <!-- {name} --> ... <!-- /{name} --> region")
        region = f"<!-- {name} -->\n{make()}\n<!-- /{name} -->"
        if found.group(0) != region:
            changed.append(name)
            text = text[:found.start()] + region + text[found.end():]
    return text, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m os_rerank.docgen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when README.md is out of date")
    parser.add_argument("--readme", type=Path, default=README, help="the README to rewrite (default: the repo's)")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    names = None
    if sys.version_info[:2] != HELP_PYTHON:
        names = tuple(n for n in REGIONS if n != "commands")
        print(f"python -m os_rerank.docgen: leaving the commands region as it is: its --help layout is Python "
              f"{'.'.join(map(str, HELP_PYTHON))}'s, and this is {sys.version_info[0]}.{sys.version_info[1]}",
              file=sys.stderr)
    new, changed = render_readme(text, names)
    if args.check:
        if changed:
            print(f"{args.readme}: out of date: {', '.join(changed)}; run `python -m os_rerank.docgen`",
                  file=sys.stderr)
            return 1
        return 0
    if changed:
        args.readme.write_text(new, encoding="utf-8")
        print(f"{args.readme}: regenerated {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
