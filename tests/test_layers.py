"""The import layers of os_rerank: every import goes to the same layer or one below, and no module imports itself
back through others. Imports are read with `ast` (those inside functions too: a lazy import is still a dependency;
those under `if TYPE_CHECKING:` are annotations and never run, so they do not count).

To add a module, put its name in the lowest layer whose modules it may need; a sub-package (`server`, `local`)
counts as one unit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

PACKAGE = Path(__file__).resolve().parent.parent / "os_rerank"

# Bottom first. A module may import modules of its own layer or of a layer listed before it.
LAYERS: list[tuple[str, list[str]]] = [
    ("facts: no I/O, no config", ["__init__", "errors", "contracts", "presets", "metrics", "capacity", "resources",
                                  "model_archive", "documents", "gate", "mlcommons", "events", "wire",
                                  "embedding_contracts", "eval_set", "plan_compare"]),
    ("config and what only needs it", ["config", "config_types", "config_deploy", "config_embedding", "config_load",
                                       "permissions", "credentials", "server", "local"]),
    ("render: the exact requests, offline", ["render", "dense_render", "plan_actions"]),
    ("transports: OpenSearch, the endpoint, AWS", ["cluster", "endpoint", "aws_calls", "model_artifact",
                                                   "aws_spec", "aws_scaling", "aws_deploy", "aws_endpoint",
                                                   "endpoint_plan", "iam", "output", "eval_report"]),
    ("reads and checks against one cluster", ["lock", "window", "preflight", "diagnose", "access", "workbench",
                                              "state"]),
    ("decisions", ["plan", "dense", "dense_query", "search", "verify"]),
    ("commands as library calls", ["apply", "rotate", "eval", "promote", "teardown", "status", "provision"]),
    ("the command line, and the README generated from it", ["cli", "cli_parser", "cli_commands", "cli_aws",
                                                              "cli_local", "__main__", "docgen"]),
]
# Narrower rules than the layer order: these units import only the named ones.
ONLY: dict[str, set[str]] = {"server": {"contracts", "embedding_contracts"}}


def _units() -> dict[str, Path]:
    """Every unit: a top-level module by name, or a sub-package by its folder name (its files, joined)."""
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.iterdir()):
        if path.suffix == ".py":
            out[path.stem] = path
        elif path.is_dir() and (path / "__init__.py").exists():
            out[path.name] = path
    return out


def _files(path: Path) -> Iterator[Path]:
    yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports_of(unit: str, path: Path, units: set[str], package: Path | None = None) -> dict[str, int]:
    """The units `unit` imports, each with the first line (in its file) that does."""
    found: dict[str, int] = {}
    for file in _files(path):
        depth = len(file.relative_to(package or PACKAGE).parts) - 1  # 0: os_rerank/x.py; 1: os_rerank/server/x.py
        tree = ast.parse(file.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    if not (node.module or "").startswith("os_rerank"):
                        continue
                    parts = (node.module or "").split(".")[1:]
                elif node.level - 1 < depth:  # relative inside a sub-package: its own unit
                    continue
                else:
                    parts = (node.module or "").split(".") if node.module else []
                targets = [parts[0]] if parts else [a.name if a.name in units else "__init__" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1] for a in node.names if a.name.startswith("os_rerank.")]
            for target in targets:
                if target != unit:
                    found.setdefault(target, node.lineno)
    return found


def graph() -> dict[str, dict[str, int]]:
    units = _units()
    return {unit: imports_of(unit, path, set(units)) for unit, path in units.items()}


def test_every_module_has_a_layer() -> None:
    placed = [m for _, modules in LAYERS for m in modules]
    assert len(placed) == len(set(placed)), "a module is listed in two layers"
    missing = sorted(set(_units()) - set(placed))
    assert not missing, (f"os_rerank modules without a layer: {', '.join(missing)}; add each to LAYERS in "
                         "tests/test_layers.py (the lowest layer whose modules it imports)")


def test_imports_never_go_up_a_layer() -> None:
    layer = {m: i for i, (_, modules) in enumerate(LAYERS) for m in modules}
    names = [name for name, _ in LAYERS]
    upward = []
    for unit, targets in sorted(graph().items()):
        for target, line in sorted(targets.items()):
            if unit in layer and target in layer and layer[target] > layer[unit]:
                upward.append(f"{unit} (layer {names[layer[unit]]!r}) imports {target} (layer "
                              f"{names[layer[target]]!r}) at line {line}")
            if unit in ONLY and target not in ONLY[unit]:
                upward.append(f"{unit} may import only {', '.join(sorted(ONLY[unit]))}, but imports {target} "
                              f"at line {line}")
    assert not upward, ("imports that go up a layer (move the fact down, or the wiring up):\n  "
                        + "\n  ".join(upward))


def test_no_import_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(unit: str) -> None:
        state[unit] = 1
        path.append(unit)
        for target in sorted(edges.get(unit, {})):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target in edges and not state.get(target):
                visit(target)
        path.pop()
        state[unit] = 2

    for unit in sorted(edges):
        if not state.get(unit):
            visit(unit)
    assert not cycles, "import cycles:\n  " + "\n  ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    """The checker itself: an import inside a function counts; one under TYPE_CHECKING does not."""
    module = tmp_path / "low.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import A\n"
                      "def f():\n    from .cli import main\n", encoding="utf-8")
    assert imports_of("low", module, {"cli", "high"}, tmp_path) == {"cli": 5}
