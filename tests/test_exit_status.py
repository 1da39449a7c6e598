"""One exit-status table: every error's exit code is an `ExitStatus`, every status is reachable and documented, and
the CLI returns no number of its own (the README's table is generated from the same enum: test_docs.py)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import os_rerank
from os_rerank.errors import MEANINGS, ExitStatus, OsRerankError

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent


def error_classes() -> list[type[OsRerankError]]:
    """OsRerankError and every subclass in the package (its modules imported first, so none hides)."""
    for info in pkgutil.walk_packages(os_rerank.__path__, "os_rerank."):
        if not info.name.startswith(("os_rerank.server", "os_rerank.__main__")):  # server: imports contracts only
            importlib.import_module(info.name)
    seen: list[type[OsRerankError]] = []
    todo: list[type[OsRerankError]] = [OsRerankError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def test_every_error_exits_with_a_documented_status() -> None:
    wrong = [c.__name__ for c in error_classes() if not isinstance(c.exit_code, ExitStatus)]
    assert not wrong, f"exit_code is not an ExitStatus member in: {', '.join(wrong)}"
    assert set(MEANINGS) == set(ExitStatus), "every ExitStatus needs its README line in errors.MEANINGS"


def test_every_failure_status_is_reachable() -> None:
    carried = {c.exit_code for c in error_classes()}
    unreachable = set(ExitStatus) - carried - {ExitStatus.OK}
    assert not unreachable, f"statuses no error carries (the README documents them): {sorted(unreachable)}"


def test_the_cli_returns_no_bare_number() -> None:
    tree = ast.parse((ROOT / "os_rerank" / "cli.py").read_text(encoding="utf-8"))
    bare = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Return)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, int)]
    assert not bare, f"cli.py returns a bare exit number at line(s) {bare}: use an ExitStatus member"
