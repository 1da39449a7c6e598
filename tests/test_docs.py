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


# --- references resolve inside the repository -------------------------------------------------------------------------

SKIP_DIRS = {".git", ".venv", ".ci-venv", ".toolkit-venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
             ".hypothesis", ".painless-build", ".demo", "build", "dist", "node_modules"}
TEXT_SUFFIXES = {".py", ".md", ".txt", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".java", ".painless", ".sh", ".cfg",
                 ".ini", ".html", ".j2", ""}
# Places outside the repository that comments once pointed to; the facts now live in docs/.
OUTSIDE = ("../" + "shared", "/work/" + "shared", "seeds" + "/", re.compile(r"\bseed \d{3}\b"), re.compile("\u00a7"))
MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
MD_PATH = re.compile(r"(?<![\w./-])((?:\.\./)*[\w.-]+(?:/[\w.-]+)*\.md)(#[\w-]+)?\b")


def repo_files() -> list[Path]:
    """The repository's text files (what a reader can open), without virtualenvs, caches and build output."""
    out = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(p in SKIP_DIRS or p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000:
            out.append(path)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]{1,2}(?=\w)|(?<=\w)[`*_]{1,2}", "", heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    """Every anchor of a Markdown file: its headings (numbered like GitHub when repeated) and explicit ids."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    in_code = False
    for line in markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6} (.+)", line)):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        found.update(re.findall(r"<a (?:id|name)=\"([^\"]+)\"", line))
    return found


def check_target(source: Path, target: str) -> str | None:
    """None when `target` (a path, optionally with #anchor, relative to `source` or the root) exists; else why not."""
    path, _, anchor = target.partition("#")
    candidates = [source] if not path else [(source.parent / path), (ROOT / path)]
    found = next((c.resolve() for c in candidates if c.exists()), None)
    if found is None:
        return f"{target}: no such file"
    if not found.is_relative_to(ROOT):
        return f"{target}: outside the repository"
    if anchor and found.suffix == ".md" and anchor not in anchors(found):
        return f"{target}: no heading #{anchor} in {found.relative_to(ROOT)}"
    return None


def test_the_slugs_are_github_s() -> None:
    assert slug("Private IP addresses") == "private-ip-addresses"
    assert slug("The eval set in the Search Relevance Workbench (3.1+)") == \
        "the-eval-set-in-the-search-relevance-workbench-31"
    assert slug("Local endpoint (`os-rerank serve`)") == "local-endpoint-os-rerank-serve"
    assert slug("What a real node showed that the double did not") == "what-a-real-node-showed-that-the-double-did-not"


def test_the_docs_exist() -> None:
    assert {"ml-commons.md", "sources.md"} <= {p.name for p in (ROOT / "docs").glob("*.md")}


def test_every_relative_link_in_the_markdown_resolves() -> None:
    problems = []
    for md in [p for p in repo_files() if p.suffix == ".md"]:
        for target in MD_LINK.findall(md.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not ours to check offline
            why = check_target(md, target)
            if why:
                problems.append(f"{md.relative_to(ROOT)}: {why}")
    assert problems == []


def test_every_markdown_path_named_in_the_repo_exists() -> None:
    """A comment or doc that names `docs/ml-commons.md#escaping` (or any .md) names a file and heading we have."""
    problems = []
    for path in repo_files():
        if path == Path(__file__).resolve():
            continue  # its own examples of broken references
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for name, anchor in MD_PATH.findall(line):
                why = check_target(path, name + anchor)
                if why:
                    problems.append(f"{path.relative_to(ROOT)}:{lineno}: {why}")
    assert problems == []


def test_nothing_points_outside_the_repository() -> None:
    problems = []
    for path in repo_files():
        if path == Path(__file__).resolve():
            continue  # it spells the patterns
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for pattern in OUTSIDE:
                if (pattern.search(line) if isinstance(pattern, re.Pattern) else pattern in line):
                    problems.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:100]}")
    assert problems == []


def test_the_reference_checks_catch_what_they_should(tmp_path: Path) -> None:
    assert check_target(ROOT / "README.md", "docs/ml-commons.md#escaping") is None
    assert check_target(ROOT / "README.md", "#tests") is None
    assert "no heading" in (check_target(ROOT / "README.md", "docs/ml-commons.md#no-such-section") or "")
    assert "no such file" in (check_target(ROOT / "README.md", "docs/missing.md") or "")
    assert "no such file" in (check_target(ROOT / "os_rerank" / "x.py", "ml-commons.md") or "")
    assert MD_PATH.findall("see ml-commons.md#escaping, or docs/sources.md.") == [
        ("ml-commons.md", "#escaping"), ("docs/sources.md", "")]
    assert MD_PATH.findall("--write /tmp/matrix.md") == []


SECTION_REF = re.compile(r"""(?:README(?:'s)? |see |the README's )"([A-Z][^"]{2,60})\"""")


def test_every_quoted_readme_section_exists() -> None:
    """A quoted README section (README "Tests", see "Promote and roll back") starts a heading or a bold lead."""
    leads = [m.group(1) for m in re.finditer(r"^#{1,6} (.+)$", README, re.M)]
    leads += re.findall(r"\*\*([^*]+)\*\*", README)
    problems = []
    for path in repo_files():
        if path == Path(__file__).resolve():
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for name in SECTION_REF.findall(line):
                if not any(lead.startswith(name) for lead in leads):
                    problems.append(f"{path.relative_to(ROOT)}:{lineno}: no README section {name!r}")
    assert problems == []


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
