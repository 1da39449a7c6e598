"""One event type on one stream: every library function reports progress as events.Event through one callback."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from os_rerank.events import Event, note

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

PACKAGE = Path(__file__).resolve().parent.parent / "os_rerank"


def test_an_event_reads_as_its_symbol_and_message_and_a_note_as_its_message() -> None:
    assert Event("create", "connector", "c", "connector c created (id x)", "x").line() == "+ connector c created (id x)"
    assert Event("unchanged", "index", "i", "index i: exists").line() == "= index i: exists"
    assert Event("failed", "model", "m", "model m failed: no").line() == "! model m failed: no"
    assert Event("odd", "r", "n", "something").line() == "* something"
    assert note("eval: depth 3: queries 1-2 of 2 done").line() == "eval: depth 3: queries 1-2 of 2 done"


def test_no_module_defines_its_own_progress_callback_type() -> None:
    """`OnEvent = Callable[[str], None]` in four modules was two signatures for one idea; only events.py has one."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript):
                text = ast.unparse(node.value)
                if text.startswith(("Callable[[str], None]", "collections.abc.Callable[[str], None]")):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_progress_goes_to_stderr_and_the_result_to_stdout() -> None:
    import io

    from os_rerank.output import Env, progress

    out, err = io.StringIO(), io.StringIO()
    on_event = progress(Env({}, out, err), "local: ")
    on_event(note("waiting for node plain"))
    on_event(Event("delete", "pipeline", "p", "pipeline p deleted"))
    assert (out.getvalue(), err.getvalue()) == ("", "local: waiting for node plain\nlocal: - pipeline p deleted\n")
