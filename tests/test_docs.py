"""Docs that cannot drift: every command is in the README, the example config loads, CI runs the README's tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from os_rerank.cli import build_parser
from os_rerank.config import load_config

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


def test_the_readme_reference_is_generated_from_the_code() -> None:
    """Exit statuses and every config key: the README holds what docgen makes of the code."""
    from os_rerank.docgen import REGIONS, render_readme

    _, changed = render_readme(README, ("exit-statuses", "config"))
    assert not changed, (f"README.md is out of date in region(s) {', '.join(changed)}: run "
                         "`python -m os_rerank.docgen` and commit the result")
    assert set(REGIONS) == {"exit-statuses", "commands", "config"}


def test_the_readme_command_reference_is_every_help() -> None:
    import sys

    from os_rerank.docgen import HELP_PYTHON, render_readme

    if sys.version_info[:2] != HELP_PYTHON:
        pytest.skip(f"argparse lays --help out differently outside Python {HELP_PYTHON}: the README holds that one")
    _, changed = render_readme(README, ("commands",))
    assert not changed, "README.md's command reference is out of date: run `python -m os_rerank.docgen`"


def test_the_reference_names_every_command_and_config_key() -> None:
    """The generator itself: a command or key it skipped would pass the drift test above unnoticed."""
    from os_rerank.config import Config
    from os_rerank.docgen import command_reference, config_reference

    commands_block = command_reference()
    missing = [c for c in commands() if f"<code>os-rerank {c}</code>" not in commands_block]
    assert not missing, f"docgen's command reference lacks {missing}"
    table = config_reference()
    for section, info in Config.model_fields.items():
        if not info.exclude:
            assert f"| `{section}` |" in table
    assert "| `connector.client_config.retry_backoff_millis` | integer | `200` |" in table
    assert "| `sagemaker.region` | string | required |" in table


def test_docgen_check_names_the_command_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from os_rerank.docgen import main

    stale = tmp_path / "README.md"
    stale.write_text(README.replace("| 0 | done |", "| 0 | finished |"), encoding="utf-8")
    assert main(["--check", "--readme", str(stale)]) == 1
    assert "out of date: exit-statuses; run `python -m os_rerank.docgen`" in capsys.readouterr().err
    assert main(["--readme", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == README
