"""`--help` of every command, byte for byte: refactoring the command line must not change a word of it.

The snapshots in tests/data/help/ are the parser's text at a fixed width. A change to an option or its help is a
change to these files too (regenerate: OS_RERANK_UPDATE_HELP=1 pytest tests/test_help.py), so it shows in review.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from os_rerank.cli import build_parser, main

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

SNAPSHOTS = Path(__file__).resolve().parent / "data" / "help"
SNAPSHOT_PYTHON = (3, 11)  # argparse lays help out differently from one Python version to the next


def _commands() -> list[tuple[str, ...]]:
    """Every command and sub-action the parser knows, found in the parser itself (so a new one is covered too)."""
    import argparse

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = [prefix]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += walk(sub, (*prefix, name))
        return found

    return walk(build_parser(), ())


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "os-rerank")
@pytest.mark.skipif(sys.version_info[:2] != SNAPSHOT_PYTHON,
                    reason="the help snapshots are Python 3.11's argparse layout; other versions wrap differently")
def test_help_text_is_unchanged(command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal's width
    out, err = io.StringIO(), io.StringIO()
    assert main([*command, "--help"], environ={}, stdout=out, stderr=err) == 0
    snapshot = SNAPSHOTS / ("_".join(command or ("os-rerank",)) + ".txt")
    if os.environ.get("OS_RERANK_UPDATE_HELP"):
        snapshot.write_text(out.getvalue(), encoding="utf-8")
    assert (out.getvalue(), err.getvalue()) == (snapshot.read_text(encoding="utf-8"), "")


def test_help_imports_no_heavy_library() -> None:
    """`--help` is the first thing a user runs: it must not pay for jinja2 (render), boto3 or opensearch-py."""
    import subprocess

    code = ("import io, sys; from os_rerank.cli import main; "
            "main(['--help'], environ={}, stdout=io.StringIO(), stderr=io.StringIO()); "
            "print(sorted(m for m in ('jinja2', 'boto3', 'opensearchpy', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr
