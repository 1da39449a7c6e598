"""The suite's own shape: test modules share helpers through tests/support (never import one another), and each
module declares its one layer (README "Tests")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import LAYERS

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

TESTS = Path(__file__).resolve().parent
MODULES = sorted(TESTS.rglob("test_*.py"))


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports, relative imports spelled as `.name` (at any depth, not only at the top)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            found += [module] if node.module else [f"{module}{alias.name}" for alias in node.names]
    return found


def is_test_module(name: str) -> bool:
    return any(part.startswith("test_") for part in name.lstrip(".").split("."))


def declared_layers(path: Path) -> list[str]:
    """The layers in the module's top-level `pytestmark = pytest.mark.<layer>` (or a list of marks)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            marks = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            return [m.attr for m in marks if isinstance(m, ast.Attribute) and m.attr in LAYERS]
    return []


def test_the_suite_has_modules() -> None:
    assert len(MODULES) > 50


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(TESTS)))
def test_no_test_module_imports_another(path: Path) -> None:
    wrong = [name for name in imported_modules(path) if is_test_module(name)]
    assert wrong == [], f"{path.name} imports from test modules {wrong}: move the helper to tests/support/"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(TESTS)))
def test_every_test_module_declares_exactly_one_layer(path: Path) -> None:
    assert len(declared_layers(path)) == 1, f"{path.name}: add `pytestmark = pytest.mark.<one of {LAYERS}>`"


def test_the_helpers_check_catches_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text("from tests.test_plan import x\nfrom .test_apply import y\nfrom tests.support.plans import z\n"
                      "def f():\n    from tests.scenarios.test_faults import w\n", encoding="utf-8")
    assert [n for n in imported_modules(sample) if is_test_module(n)] == [
        "tests.test_plan", ".test_apply", "tests.scenarios.test_faults"]
    sample.write_text("import pytest\npytestmark = [pytest.mark.unit, pytest.mark.scenario]\n", encoding="utf-8")
    assert declared_layers(sample) == ["unit", "scenario"]
