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
    ("facts: no I/O, no config", ["__init__", "errors", "contracts", "aws.presets", "search.metrics",
                                  "search.capacity", "resources", "aws.archive", "documents", "search.gate",
                                  "mlcommons", "events", "wire", "embedding_contracts", "search.eval_set",
                                  "provision.plan_compare"]),
    ("config and what only needs it", ["config", "config_types", "config_deploy", "config_embedding", "config_load",
                                       "provision.permissions", "credentials", "server", "local"]),
    ("render: the exact requests, offline", ["provision.render", "provision.dense_render", "provision.plan_actions"]),
    ("transports: OpenSearch, the endpoint, AWS", ["cluster", "endpoint", "aws.calls", "aws.artifact", "aws.spec",
                                                   "aws.scaling", "aws.deploy", "aws.endpoint", "aws.plan", "aws.iam",
                                                   "output", "search.eval_report"]),
    ("reads and checks against one cluster", ["provision.lock", "provision.window", "provision.preflight",
                                              "provision.diagnose", "provision.access", "search.workbench",
                                              "provision.state"]),
    ("decisions", ["provision.plan", "provision.dense", "search.dense_query", "search.query", "provision.verify"]),
    ("commands as library calls", ["provision.apply", "provision.rotate", "search.eval", "provision.promote",
                                   "provision.teardown", "provision.status", "provision.setup", "provision", "search",
                                   "aws"]),
    ("the command line, and the README generated from it", ["cli", "cli_parser", "cli_commands", "cli_aws",
                                                            "cli_local", "__main__", "docgen"]),
]
# Narrower rules than the layer order: these units import only the named ones.
ONLY: dict[str, set[str]] = {"server": {"contracts", "embedding_contracts"}}


# The product folders whose modules are units of their own (provision.apply, search.eval, aws.deploy ...); server/
# and local/ are products that import almost nothing of the rest, so each is one unit.
PRODUCTS = ("provision", "search", "aws")


def _units() -> dict[str, Path]:
    """Every unit: a top-level module, a module of a product folder (`provision.plan`; the folder's __init__ is
    `provision`), or a sub-package counted whole (`server`, `local`)."""
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.iterdir()):
        if path.suffix == ".py":
            out[path.stem] = path
        elif path.is_dir() and (path / "__init__.py").exists():
            if path.name in PRODUCTS:
                for module in sorted(path.glob("*.py")):
                    out[path.name if module.stem == "__init__" else f"{path.name}.{module.stem}"] = module
            else:
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


def _unit_of(dotted: list[str], units: set[str]) -> str | None:
    """The unit that the module os_rerank.<dotted> belongs to (None: the package itself)."""
    if not dotted:
        return None
    if dotted[0] in PRODUCTS and len(dotted) > 1 and f"{dotted[0]}.{dotted[1]}" in units:
        return f"{dotted[0]}.{dotted[1]}"
    return dotted[0]


def imports_of(unit: str, path: Path, units: set[str], package: Path | None = None) -> dict[str, int]:
    """The units `unit` imports, each with the first line (in its file) that does."""
    root = package or PACKAGE
    found: dict[str, int] = {}
    for file in _files(path):
        here = list(file.relative_to(root).with_suffix("").parts)  # os_rerank/<here>
        package_parts = here[:-1]  # the package a relative import starts from
        tree = ast.parse(file.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in skip:
                continue
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    if not (node.module or "").startswith("os_rerank"):
                        continue
                    base = (node.module or "").split(".")[1:]
                else:
                    if node.level - 1 > len(package_parts):
                        continue
                    base = package_parts[: len(package_parts) - (node.level - 1)] + (
                        node.module.split(".") if node.module else [])
                if node.module is None or base == [] or (len(base) == 1 and base[0] in PRODUCTS):
                    targets = [base + [a.name] for a in node.names]  # `from . import x`: x may be a module
                else:
                    targets = [base]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1:] for a in node.names if a.name.startswith("os_rerank.")]
            for dotted in targets:
                target = _unit_of(dotted, units)
                if target is None or target not in units:
                    target = _unit_of(dotted[:-1], units) if len(dotted) > 1 else "__init__"
                if target is not None and target != unit and target in units:
                    found.setdefault(target, node.lineno)
                elif target is None and unit != "__init__":
                    found.setdefault("__init__", node.lineno)
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
