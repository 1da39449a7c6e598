"""The public API (`__all__` of os_rerank, os_rerank.server, os_rerank.local) resolves, stays cheap to import, and
does not change unnoticed: names and function signatures are pinned in tests/data/golden/public_api.txt
(OS_RERANK_UPDATE_GOLDEN=1 rewrites it after a deliberate change)."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

PACKAGES = ("os_rerank", "os_rerank.provision", "os_rerank.search", "os_rerank.aws", "os_rerank.server",
            "os_rerank.local")
GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "public_api.txt"


def describe(package: str) -> list[str]:
    """One line per public name: `package.name: function(signature)`, `class`, or the type of a constant."""
    module = importlib.import_module(package)
    lines = []
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value):
            kind = "class"
        elif callable(value):
            kind = "function" + re.sub(r" at 0x[0-9a-f]+", "", str(inspect.signature(value)))  # default reprs
        else:
            kind = type(value).__name__
        lines.append(f"{package}.{name}: {kind}")
    return lines


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_unique_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__ == sorted(set(module.__all__))
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        module.nonexistent  # noqa: B018


def test_the_public_api_is_the_pinned_one() -> None:
    text = "".join(line + "\n" for package in PACKAGES for line in describe(package))
    if os.environ.get("OS_RERANK_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the public API changed: if on purpose, rerun with OS_RERANK_UPDATE_GOLDEN=1 and say so in the commit")


def test_importing_a_package_loads_none_of_its_modules() -> None:
    """The names load on first use: `import os_rerank` stays free, and the server still imports contracts only."""
    code = ("import sys, os_rerank, os_rerank.server, os_rerank.local; "
            "print(sorted(m for m in sys.modules if m.startswith('os_rerank')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['os_rerank', 'os_rerank.local', 'os_rerank.server']"


def test_a_library_user_drives_the_flow_from_the_top_package() -> None:
    from os_rerank import apply_plan, connect, desired_state, load_config, make_plan, read_state, run_search

    assert load_config.__module__ == "os_rerank.config" and make_plan.__module__ == "os_rerank.provision.plan"
    assert {f.__module__ for f in (apply_plan, connect, desired_state, read_state, run_search)} == {
        "os_rerank.provision.apply", "os_rerank.cluster", "os_rerank.provision.plan", "os_rerank.provision.state",
        "os_rerank.search.query"}
    from os_rerank import cli  # a submodule that is not an export still imports as one

    assert cli.__name__ == "os_rerank.cli"
