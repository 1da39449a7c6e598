"""Docs that cannot drift: every command is in the README, the example config loads, CI runs the README's tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from os_rerank.cli import build_parser
from os_rerank.config import load_config

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[attr-defined]


def test_every_command_is_in_the_readme() -> None:
    missing = [c for c in commands() if f"os-rerank {c}" not in README]
    assert missing == []


def test_example_config_loads() -> None:
    config = load_config(ROOT / "config.example.yaml", {})
    assert config.sagemaker.contract == "hf-text-classification"


def test_ci_runs_the_readme_test_command() -> None:
    block = re.search(r"The test command itself.*?```bash\n(.*?)\n```", README, re.S)
    assert block, "README must show the test command in a bash block after 'The test command itself'"
    readme_command = block.group(1).strip()
    ci_lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert ci_lines[-1] == readme_command


def test_the_readme_exit_status_table_is_the_code_s() -> None:
    from os_rerank.errors import exit_status_table

    block = re.search(r"<!-- exit-statuses -->\n(.*?)\n<!-- /exit-statuses -->", README, re.S)
    assert block, "README must hold the exit-status table between <!-- exit-statuses --> markers"
    assert block.group(1) == exit_status_table()
